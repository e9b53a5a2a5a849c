"""Admin: AEs with grade episodes and attributions inline (same validation as the API),
read-only DLT/TI flags with their reasons, and the searchable CTCAE v5.0 dictionary."""

from __future__ import annotations

import contextlib
import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from edc.core import roles
from edc.core.admin import (
    AllocationGuard,
    ClinicalAdmin,
    ReasonForChangeForm,
    RetireForm,
    RoleInline,
    ScopedRelatedFilter,
    service_form_view,
)
from edc.core.audit import change_reason
from subjects.models import Subject
from trials.blinding import blinded_name
from trials.models import Intervention

from . import services
from .models import EFFECTIVE_FLAG, AdverseEvent, Attribution, CtcaeTerm, GradeEpisode, ToxicityFlag
from .validation import AttributionDraft, EpisodeDraft, validate, validate_attributions

NESTED = re.compile(r"^(?:grade_episodes|attributions)\[(\d+)\]\.(\w+)$")


class AdverseEventForm(ReasonForChangeForm):
    def clean(self):
        cleaned = super().clean()
        # The inline formsets need the reason too (an inline-only change is still a change).
        self.instance._admin_reason = (cleaned.get("reason_for_change") or "").strip()
        return cleaned


class _ClinicalInlineFormSet(forms.BaseInlineFormSet):
    def _filled_forms(self):
        return [f for f in self.forms if f.has_changed() or f.instance.pk]

    def _check_reason(self) -> None:
        if self.instance.pk and self.has_changed() and not getattr(
                self.instance, "_admin_reason", ""):
            raise ValidationError("A reason for change is required (reason for change field).")

    def _report(self, exc: ValidationError, filled) -> None:
        other = []
        for key, problems in exc.message_dict.items():
            match = NESTED.match(key)
            if match and int(match[1]) < len(filled) and match[2] in filled[int(match[1])].fields:
                for message in problems:
                    filled[int(match[1])].add_error(match[2], message)
            else:
                other.extend(f"{key}: {m}" for m in problems)
        if other:
            raise ValidationError(other)


class GradeEpisodeFormSet(_ClinicalInlineFormSet):
    def get_queryset(self):
        return super().get_queryset().filter(retired_at__isnull=True)

    def clean(self):
        super().clean()
        self._check_reason()
        ae = self.instance
        filled = self._filled_forms()
        if ae.subject_id is None or ae.term_id is None or ae.onset_date is None or any(
                f.errors for f in filled):
            return
        drafts = [EpisodeDraft(f.cleaned_data["grade"], f.cleaned_data["start_date"],
                               f.cleaned_data.get("end_date")) for f in filled]
        values = {name: getattr(ae, name) for name in (*services.AE_FIELDS, "reported_at")}
        try:
            validate(Subject.objects.get(pk=ae.subject_id), values, drafts, None)
        except ValidationError as exc:
            self._report(exc, filled)
        ae.grade = max(d.grade for d in drafts)  # saved with the AE (save_model comes next)


class AttributionFormSet(_ClinicalInlineFormSet):
    def get_queryset(self):
        return super().get_queryset().filter(retired_at__isnull=True)

    def clean(self):
        super().clean()
        self._check_reason()
        ae = self.instance
        filled = self._filled_forms()
        if ae.subject_id is None or ae.onset_date is None or any(f.errors for f in filled):
            return
        drafts = [AttributionDraft(f.cleaned_data["intervention"], f.cleaned_data["level"])
                  for f in filled]
        try:
            validate_attributions(Subject.objects.get(pk=ae.subject_id), ae.onset_date, drafts)
        except ValidationError as exc:
            self._report(exc, filled)


class GradeEpisodeInline(RoleInline, admin.TabularInline):
    model = GradeEpisode
    formset = GradeEpisodeFormSet
    fields = ["grade", "start_date", "end_date"]
    extra = 1


class AttributionTargetField(forms.ModelChoiceField):
    """Products an AE can be attributed to: in a blinded trial a product and its matching
    placebo are one choice, the blinded study treatment (``trials.blinding``)."""

    def label_from_instance(self, obj) -> str:
        trial = obj.protocol_version.trial
        if trial.is_blinded and obj.has_placebo:
            return f"{trial.registry_id}: {blinded_name(obj.code)}"
        return f"{trial.registry_id}: {obj.agent}"


class AttributionInline(RoleInline, admin.TabularInline):
    model = Attribution
    formset = AttributionFormSet
    fields = ["intervention", "level"]
    extra = 1

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name != "intervention":
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        placebo_of = Intervention.objects.filter(
            protocol_version=OuterRef("protocol_version"), placebo_for=OuterRef("code"))
        choices = roles.scope(
            Intervention.objects.select_related("protocol_version__trial"), request.user,
            trial="protocol_version__trial", site=None,
        ).exclude(~Q(placebo_for="") & ~Q(protocol_version__trial__masking="none")
                  ).annotate(has_placebo=Exists(placebo_of))
        return AttributionTargetField(queryset=choices, **kwargs)


class ToxicityFlagInline(RoleInline, admin.TabularInline):
    model = ToxicityFlag
    fields = ["kind", "rule_code", "computed", "override", "effective", "reason",
              "evaluated_at"]
    readonly_fields = fields
    extra = 0

    @admin.display(boolean=True)
    def effective(self, obj):
        return obj.effective

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReportSaeForm(forms.Form):
    reported_at = forms.SplitDateTimeField(widget=admin.widgets.AdminSplitDateTime,
                                           help_text="When the report reached the sponsor "
                                                     "(UTC).")


class FlagKindFilter(admin.SimpleListFilter):
    title = "toxicity flag"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return ToxicityFlag.Kind.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(toxicity_flags__in=ToxicityFlag.objects.filter(
                EFFECTIVE_FLAG, kind=self.value())).distinct()
        return queryset


class SaeStatusFilter(admin.SimpleListFilter):
    title = "SAE clock"
    parameter_name = "sae_status"

    def lookups(self, request, model_admin):
        return [(s, s.replace("_", " ")) for s in
                ("due", "overdue", "reported", "reported_late", "not_serious")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.sae_status(self.value())
        return queryset


@admin.register(AdverseEvent)
class AdverseEventAdmin(ClinicalAdmin):
    form = AdverseEventForm
    scope_trial, scope_site = "subject__trial", "subject__site"
    inlines = [GradeEpisodeInline, AttributionInline, ToxicityFlagInline]
    list_display = ["id", "subject", "term", "verbatim_term", "onset_date", "resolution_date",
                    "grade", "serious", "aware_at", "reported_at"]
    list_filter = ["serious", "grade", FlagKindFilter, SaeStatusFilter,
                   ("subject__trial", ScopedRelatedFilter), ("subject__site", ScopedRelatedFilter)]
    search_fields = ["term__term", "=term__meddra_code", "verbatim_term",
                     "subject__subject_number", "subject__screening_number"]
    list_select_related = ["subject", "term"]
    date_hierarchy = "onset_date"
    autocomplete_fields = ["term"]
    readonly_fields = ["grade", "reported_at", "reported_by", "sae_overdue_raised_at",
                       "retired_at", "retired_reason"]
    change_form_template = "admin/adverse_events/adverseevent/change_form.html"
    actions = ["record_sae_reported"]

    @admin.action(description="Record selected SAEs as reported to the sponsor now",
                  permissions=["enter_data"])
    def record_sae_reported(self, request, queryset):
        """The SAE clock stops when the site reports (``services.report_sae``, ICH E2A); an
        AE that is not serious or already reported is refused with its reason."""
        done = 0
        for ae in queryset:
            try:
                services.report_sae(ae, user=request.user)
                done += 1
            except ValidationError as exc:
                messages.error(request, f"{ae}: not recorded: {'; '.join(exc.messages)}")
        if done:
            messages.success(request, f"{done} SAE(s) recorded as reported to the sponsor.")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:pk>/retire/", view(self.retire_view),
                     name="adverse_events_adverseevent_retire"),
                path("<int:pk>/report-sae/", view(self.report_sae_view),
                     name="adverse_events_adverseevent_report_sae"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {**(extra_context or {}), "can_enter_data": roles.can_enter_data(request.user)}
        return super().change_view(request, object_id, form_url, context)

    def _adverse_event(self, request, pk) -> AdverseEvent:
        ae = self.get_queryset(request).filter(pk=pk).select_related("subject", "term").first()
        if ae is None:
            raise Http404("No such adverse event in your trials and sites.")
        return ae

    def report_sae_view(self, request, pk):
        """The subject page's "record SAE reported": when the report reached the sponsor."""
        ae = self._adverse_event(request, pk)
        form = ReportSaeForm(request.POST or None, initial={"reported_at": timezone.now()})

        def perform(data):
            services.report_sae(ae, request.user, data["reported_at"])
            messages.success(request, f"SAE {ae.pk} recorded as reported to the sponsor.")
            return HttpResponseRedirect(reverse("admin:subjects_subject_change",
                                                args=[ae.subject_id]) + "#adverse-events")

        return service_form_view(self, request, ae, form,
                                 title=f"Record SAE reported: AE {ae.pk} {ae.display_term}",
                                 perform=perform, submit="Record SAE reported")

    def retire_view(self, request, pk):
        ae = self._adverse_event(request, pk)
        form = RetireForm(request.POST or None)

        def perform(data):
            services.retire_adverse_event(ae, data["reason"], request.user)
            messages.success(request, "Adverse event retired as entered in error (kept with "
                                      "its audit trail).")
            return HttpResponseRedirect(reverse("admin:subjects_subject_change",
                                                args=[ae.subject_id]) + "#adverse-events")

        return service_form_view(self, request, ae, form, title="Retire adverse event "
                                 "entered in error", perform=perform, submit="Retire",
                                 rename={"grade": "reason", "retired_at": "reason"})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "subject":
            kwargs["queryset"] = roles.scope(Subject.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        reason = (form.cleaned_data.get("reason_for_change") or "").strip()
        context = change_reason(reason, request.user) if change and reason else (
            contextlib.nullcontext())
        with transaction.atomic(), context:
            super().save_related(request, form, formsets, change)
            ae = form.instance
            if ae.grade == 5 and ae.death_date:
                from subjects.services import record_death

                record_death(ae.subject, ae.death_date, user=request.user,
                             source=f"grade 5 adverse event {ae.pk}")
            services.queue_toxicity_evaluation(ae.subject_id)


@admin.register(ToxicityFlag)
class ToxicityFlagAdmin(ClinicalAdmin):
    """Read-only: flags are computed by the rules; overrides go through the API action."""

    scope_trial, scope_site = "subject__trial", "subject__site"
    list_display = ["id", "subject", "adverse_event", "kind", "rule_code", "computed",
                    "override", "evaluated_at"]
    list_filter = ["kind", "computed", "override", "rule_code",
                   ("subject__trial", ScopedRelatedFilter), ("subject__site", ScopedRelatedFilter)]
    search_fields = ["subject__subject_number", "rule_code", "reason"]
    list_select_related = ["subject", "adverse_event__term", "adverse_event__subject"]
    readonly_fields = [f.name for f in ToxicityFlag._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(AllocationGuard, admin.ModelAdmin):
    list_display = ["meddra_code", "term", "soc"]
    list_filter = ["soc"]
    search_fields = ["term", "=meddra_code"]
    readonly_fields = [f.name for f in CtcaeTerm._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff and bool(
            roles.roles_of(request.user))

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)
