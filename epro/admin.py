"""Admin of ePRO: site staff issue a link for a visit's scheduled QLQ-C30 (its URL and QR
code are shown once) and revoke it with a reason; the trial's licensed wordings and the data
clarifications are read here (both are written by their services only)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from edc.core import roles
from edc.core.admin import ClinicalAdmin, ScopedRelatedFilter, choice_label, service_form_view
from visits.models import Visit

from . import services
from .models import EproClarification, EproLink, EproWording


class IssueForm(forms.Form):
    visit = forms.ModelChoiceField(queryset=Visit.objects.none(), label=_("visit"),
                                   help_text=_("A visit whose protocol schedules the QLQ-C30"))
    language = forms.ChoiceField(choices=[("", _("the trial's default"))], required=False,
                                 label=_("language"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        visits = roles.scope(Visit.objects.filter(qlq_c30_due=True, retired_at__isnull=True)
                             .select_related("subject__trial"), user,
                             trial="subject__trial", site="subject__site")
        self.fields["visit"].queryset = visits.order_by("subject__trial", "subject", "code")
        self.fields["visit"].label_from_instance = choice_label
        self.fields["language"].choices += list(settings.LANGUAGES)


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("reason"), widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Why the link is withdrawn (audit trail)."))


@admin.register(EproLink)
class EproLinkAdmin(ClinicalAdmin):
    scope_trial, scope_site = "subject__trial", "subject__site"
    list_display = ["created_at", "subject", "visit", "language", "link_state", "expires_at",
                    "submitted_at"]
    list_filter = [("subject__site", ScopedRelatedFilter), "language"]
    search_fields = ["subject__subject_number", "subject__screening_number", "visit__code"]
    list_select_related = ["subject", "visit__subject"]
    readonly_fields = ["subject", "visit", "instrument", "language", "issued_by", "expires_at",
                       "opened_at", "submitted_at", "device_submitted_at", "form", "revoked_at",
                       "revoked_reason", "link_state"]
    fields = readonly_fields
    change_form_template = "admin/epro/eprolink/change_form.html"

    @admin.display(description=_("state"))
    def link_state(self, obj):
        return EproLink.State(obj.state()).label

    def has_add_permission(self, request) -> bool:
        return False  # issued through the issue page (the token is shown once)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        extra = {"can_issue": roles.can_enter_data(request.user), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def get_urls(self):
        return [
            path("issue/", self.admin_site.admin_view(self.issue_view),
                 name="epro_eprolink_issue"),
            path("<int:pk>/revoke/", self.admin_site.admin_view(self.revoke_view),
                 name="epro_eprolink_revoke"),
            *super().get_urls(),
        ]

    def issue_view(self, request):
        """Issue a one-time link; the page then shows its URL and QR code, once."""
        initial = {"visit": request.GET.get("visit")}
        form = IssueForm(request.POST or None, initial=initial, user=request.user)

        def perform(data):
            link, token = services.issue_link(data["visit"], data["language"] or None,
                                              request.user)
            url = services.link_url(token)
            request.current_app = self.admin_site.name
            return TemplateResponse(request, "admin/epro/eprolink/issued.html", {
                **self.admin_site.each_context(request), "opts": self.opts, "link": link,
                "url": url, "qr_svg": services.qr_svg(url),
                "title": gettext("ePRO link issued")})

        return service_form_view(self, request, None, form, title=gettext("Issue an ePRO link"),
                                 perform=perform, submit=gettext("Issue link"), intro=gettext(
                                     "The link and its QR code are shown once, on the next "
                                     "page: give them to the patient. It opens only inside "
                                     "the visit's window, once, on one device."))

    def revoke_view(self, request, pk):
        link = get_object_or_404(self.get_queryset(request), pk=pk)
        if not roles.can_enter_data(request.user):
            raise PermissionDenied
        form = RevokeForm(request.POST or None)

        def perform(data):
            services.revoke_link(link, data["reason"], request.user)
            self.message_user(request, gettext("The link was revoked."))
            return redirect(reverse("admin:epro_eprolink_change", args=[link.pk]))

        return service_form_view(self, request, link, form, title=gettext("Revoke ePRO link"),
                                 perform=perform, submit=gettext("Revoke"))


@admin.register(EproWording)
class EproWordingAdmin(ClinicalAdmin):
    """Loaded with ``manage.py load_epro_wording`` (licensed text: never typed in here)."""

    scope_site = None
    list_display = ["trial", "instrument", "language", "version", "is_default", "source_name",
                    "created_at", "retired_at"]
    list_filter = [("trial", ScopedRelatedFilter), "language"]
    readonly_fields = ["trial", "instrument", "language", "version", "licence", "source_name",
                       "digest", "is_default", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EproClarification)
class EproClarificationAdmin(ClinicalAdmin):
    """Recorded through the API (``POST /api/v1/epro-clarifications/``), read here."""

    scope_trial, scope_site = "subject__trial", "subject__site"
    list_display = ["created_at", "subject", "form", "item", "old_value", "new_value",
                    "confirmed_on", "recorded_by"]
    list_filter = [("subject__site", ScopedRelatedFilter)]
    list_select_related = ["subject", "form__subject", "recorded_by"]
    readonly_fields = ["form", "subject", "item", "old_value", "new_value", "reason",
                       "patient_confirmation", "confirmed_on", "recorded_by", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
