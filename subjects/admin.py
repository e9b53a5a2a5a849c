"""Admin for sites, memberships and subjects: the subject-centred page of the site staff.

The subject page shows, each one click away: eligibility (answers inline, problems listed),
the allocation (``Blinded`` for users blinded to the trial), the visit calendar with windows,
exposures, tumour assessments, QLQ-C30 forms with scores and deterioration, and adverse events
with grade episodes and DLT/TI flags. Screening, enrollment and status changes are buttons
that call the services (``subjects.enrollment.enroll``, ``screen_fail``, ``subjects.services``);
refusals come back as messages or form errors, never re-implemented here.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from edc.core import roles
from edc.core.admin import (
    ClinicalAdmin,
    ReasonForChangeForm,
    RetireForm,
    RoleInline,
    ScopedRelatedFilter,
    blinded_for,
    blinded_q,
    plain,
    report_problems,
    service_form_view,
)
from edc.core.audit import change_reason
from trials.blinding import BLINDED_ARM
from trials.masking import text_masker

from . import enrollment, lifecycle, page_sections, services
from .api import arm_label_for
from .models import (
    DoseConfirmation,
    EligibilityAnswer,
    Membership,
    SafetyReview,
    Site,
    Subject,
)


@admin.register(Site)
class SiteAdmin(ClinicalAdmin):
    """Sites are set up by admins only; others see their own sites."""

    list_display = ["code", "name", "city", "country", "trial"]
    list_filter = [("trial", ScopedRelatedFilter), "country"]
    search_fields = ["code", "name", "city"]
    list_select_related = ["trial"]
    scope_site = "pk"

    def has_add_permission(self, request) -> bool:
        return roles.is_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user)


class RevokeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the access ends (kept in the audit trail).")


@admin.register(Membership)
class MembershipAdmin(ClinicalAdmin):
    """Granted by admins only; revoked with a reason (retired, never deleted; audited)."""

    list_display = ["user", "trial", "site", "unblinded", "revoked"]
    list_filter = [("trial", ScopedRelatedFilter), "unblinded",
                   ("retired_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "trial__registry_id", "site__code"]
    list_select_related = ["user", "trial", "site"]

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return roles.is_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user) and (obj is None or obj.retired_at is None)

    @admin.display(description="revoked", ordering="retired_at")
    def revoked(self, obj):
        if obj.retired_at is None:
            return ""
        return f"{obj.retired_at:%Y-%m-%d %H:%M} UTC: {obj.retired_reason}"

    def get_urls(self):
        return [path("<int:pk>/revoke/", self.admin_site.admin_view(self.revoke_view),
                     name="subjects_membership_revoke"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "revoke_url": reverse(
            "admin:subjects_membership_revoke", args=[object_id])}
        return super().change_view(request, object_id, form_url, extra_context)

    def revoke_view(self, request, pk):
        membership = self.get_queryset(request).filter(pk=pk, retired_at__isnull=True).first()
        if not roles.is_admin(request.user):
            raise PermissionDenied
        if membership is None:
            raise Http404("No active membership with this id.")
        form = RevokeForm(request.POST or None)

        def perform(data):
            membership.retire(data["reason"], request.user)
            messages.success(request, f"Access revoked: {membership}.")
            return HttpResponseRedirect(reverse("admin:subjects_membership_changelist"))

        return service_form_view(self, request, membership, form, title="Revoke access",
                                 perform=perform, submit="Revoke", permission=roles.is_admin,
                                 intro="The membership is retired with your reason; it stays "
                                       "in the audit trail and can be granted again later.")


class DoseDecisionAdmin(ClinicalAdmin):
    """Investigators' dose-finding decisions: read-only here (recorded through the API's
    ``confirm-dose`` and ``review-safety-stop``, which apply the protocol's rules)."""

    scope_site = None
    list_select_related = ["trial"]
    list_filter = [("trial", ScopedRelatedFilter)]
    blinded_history_fields = ("arm_id",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(arm_shown=allocation_label(request.user))

    @admin.display(description="Arm", ordering="arm_shown")
    def arm_shown(self, obj):
        return obj.arm_shown

    def get_exclude(self, request, obj=None):
        """The arm never; the recommendation (it names arms) not to users blinded to it."""
        blinded = obj is not None and blinded_for(request.user, obj.trial)
        return ["arm", "recommendation"] if blinded else ["arm"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DoseConfirmation)
class DoseConfirmationAdmin(DoseDecisionAdmin):
    list_display = ["trial", "arm_shown", "kind", "cohort", "dose_level", "frequency_level",
                    "outside_rule", "reason", "confirmed_by", "created_at"]
    list_filter = [*DoseDecisionAdmin.list_filter, "kind", "outside_rule"]
    list_select_related = ["trial", "dose_level", "confirmed_by"]


@admin.register(SafetyReview)
class SafetyReviewAdmin(DoseDecisionAdmin):
    list_display = ["trial", "arm_shown", "adverse_events", "decision", "reviewed_by",
                    "created_at"]
    list_select_related = ["trial", "reviewed_by"]


# ---------------------------------------------------------------- eligibility inline

YES_NO = {"inclusion": (("True", "met"), ("False", "not met")),
          "exclusion": (("False", "absent"), ("True", "present"))}


class EligibilityAnswerForm(forms.ModelForm):
    """One criterion's answer: inclusion met / not met, exclusion absent / present."""

    criterion_key = forms.IntegerField(widget=forms.HiddenInput, required=False)
    met = forms.TypedChoiceField(coerce=lambda value: value == "True", empty_value=None,
                                 choices=[("", "—"), ("True", "yes"), ("False", "no")],
                                 label="answer")

    class Meta:
        model = EligibilityAnswer
        fields = ["met", "criterion_key"]

    def __init__(self, *args, criteria=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = criteria or {}
        if self.instance.pk:
            key = self.instance.criterion_id
            self.initial["criterion_key"] = key
            self.fields["criterion_key"].disabled = True
            self.initial["met"] = str(self.instance.met)
        else:
            key = self.initial.get("criterion_key")
        criterion = self.criteria.get(key)
        if criterion is not None:
            self.instance.criterion = criterion  # shown by the read-only criterion column
            self.fields["met"].choices = [("", "—"), *YES_NO[criterion.kind]]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk:
            key = cleaned.get("criterion_key")
            if key not in self.criteria:
                raise ValidationError("This criterion is not in the subject's protocol version.")
            self.instance.criterion = self.criteria[key]
        return cleaned


class EligibilityFormSet(forms.BaseInlineFormSet):
    def get_queryset(self):
        """The answers with their criteria, read once (Django's formset calls this for every
        form and caches only its own queryset), each knowing its subject (the page's)."""
        if not hasattr(self, "_answers"):
            self._answers = super().get_queryset().select_related("criterion")
            for answer in self._answers:  # evaluated here, once
                answer.subject = self.instance
        return self._answers

    def clean(self):
        super().clean()
        if any(f.has_changed() for f in self.initial_forms) and not getattr(
                self.instance, "_admin_reason", ""):
            raise ValidationError("A reason for change is required to change a saved "
                                  "eligibility answer (reason for change field).")
        answered = {f.instance.criterion_id for f in self.initial_forms}
        for form in self.extra_forms:
            if form.has_changed() and form.instance.criterion_id in answered:
                form.add_error(None, "Already answered meanwhile; reload the page.")


class EligibilityAnswerInline(RoleInline, admin.TabularInline):
    model = EligibilityAnswer
    form = EligibilityAnswerForm
    formset = EligibilityFormSet
    fields = ["criterion_text", "met", "criterion_key"]
    readonly_fields = ["criterion_text"]
    verbose_name = "eligibility answer"
    verbose_name_plural = "eligibility (answer every criterion before enrolling)"

    @admin.display(description="criterion")
    def criterion_text(self, obj):
        criterion = getattr(obj, "criterion", None) if obj.criterion_id else None
        if criterion is None:
            return "-"
        return format_html("<strong>{} {}</strong> {}", criterion.kind.capitalize(),
                           criterion.number, criterion.text)

    @staticmethod
    def criteria_of(obj) -> dict:
        if not hasattr(obj, "_criteria"):
            obj._criteria = {c.pk: c for c in obj.protocol_version.criteria.order_by(
                "kind", "number")}
            obj._answered = set(obj.eligibility_answers.values_list("criterion_id", flat=True))
        return obj._criteria

    def unanswered(self, obj) -> list[int]:
        criteria = self.criteria_of(obj)
        return [pk for pk in criteria if pk not in obj._answered]

    def get_extra(self, request, obj=None, **kwargs):
        return len(self.unanswered(obj)) if obj is not None else 0

    def get_max_num(self, request, obj=None, **kwargs):
        return len(self.criteria_of(obj)) if obj is not None else 0


# ---------------------------------------------------------------- subject list


class AllocationFilter(admin.SimpleListFilter):
    """Filter by arm, in the trials the user is not blinded to (blinded users see one
    allocation, ``Blinded``, so there is nothing to choose; a value given by hand selects no
    subject of a blinded trial, whatever its arm)."""

    title = "allocation"
    parameter_name = "allocation"

    def lookups(self, request, model_admin):
        from trials.models import Arm

        arms = Arm.objects.filter(
            Exists(model_admin.get_queryset(request).filter(arm=OuterRef("pk")))
        ).exclude(blinded_q(request.user, "protocol_version__trial")).select_related(
            "protocol_version__trial").order_by("protocol_version", "sequence")
        return [(str(arm.pk), f"{arm.protocol_version.trial.registry_id}: {arm.label}")
                for arm in arms]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(arm_id=self.value()).exclude(blinded_q(request.user))
        return queryset


class SubjectForm(ReasonForChangeForm):
    class Meta:
        model = Subject
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        self.instance._admin_reason = (cleaned.get("reason_for_change") or "").strip()
        trial = cleaned.get("trial") or getattr(self.instance, "trial", None)
        site = cleaned.get("site")
        if site is not None and trial is not None and site.trial_id != trial.pk:
            self.add_error("site", "This site does not take part in the trial.")
        try:
            services.check_subject_values(cleaned.get("birth_date"), cleaned.get("consent_date"))
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                if field in self.fields and field in cleaned:
                    self.add_error(field, problems)
        return cleaned


ENTRY_FIELDS = ["trial", "site", "screening_number", "sex", "race", "birth_date", "age_at_consent",
                "consent_date"]
COMPUTED_FIELDS = [
    "protocol_version", "subject_number", "usubjid", "status", "status_date", "status_reason",
    "allocation", "dose_level", "cohort", "frequency_level", "day0", "enrolled_on",
    "treatment_stop_date", "treatment_stop_reason", "death_date",
]


def _day(value) -> str:
    """A date in the page's language (short format), kept on one line."""
    if value is None:
        return "-"
    return format_html('<span style="white-space: nowrap">{}</span>',
                       date_format(value, "SHORT_DATE_FORMAT"))


@admin.register(Subject)
class SubjectAdmin(ClinicalAdmin):
    form = SubjectForm
    change_form_template = "admin/subjects/subject/change_form.html"
    list_display = ["screening_no", "subject_no", "site_code", "trial", "status",
                    "allocation", "dose_level_code", "cohort", "consent", "enrolled"]
    list_filter = [("trial", ScopedRelatedFilter), ("site", ScopedRelatedFilter), "status",
                   AllocationFilter, ("dose_level", ScopedRelatedFilter), "cohort"]
    search_fields = ["screening_number", "subject_number"]
    list_select_related = ["trial", "site", "dose_level"]
    date_hierarchy = "consent_date"
    exclude = ["arm"]
    inlines = [EligibilityAnswerInline]

    # -- list

    def get_queryset(self, request):
        queryset = super().get_queryset(request).annotate(
            _allocation=allocation_label(request.user))
        for section in page_sections.sections():
            queryset = section.annotate(queryset, request.user)
        return queryset

    def get_list_display(self, request):
        return [*self.list_display, *(column for section in page_sections.sections()
                                      for column in section.list_display)]

    def get_list_filter(self, request):
        return [*self.list_filter, *(f for section in page_sections.sections()
                                     for f in section.list_filter)]

    def changelist_view(self, request, extra_context=None):
        """Without the navigation sidebar: eleven columns and the filters fit 1,280 px."""
        return super().changelist_view(
            request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    # Short headings and ISO dates: the list fits 1,280 px (headings do not wrap).
    @admin.display(description="screening", ordering="screening_number")
    def screening_no(self, obj):
        return obj.screening_number

    @admin.display(description="subject", ordering="subject_number")
    def subject_no(self, obj):
        return obj.subject_number or "-"

    @admin.display(description="consent", ordering="consent_date")
    def consent(self, obj):
        return _day(obj.consent_date)

    @admin.display(description="enrolled", ordering="enrolled_on")
    def enrolled(self, obj):
        return _day(obj.enrolled_on)

    @admin.display(description="site", ordering="site__code")
    def site_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.site.name, obj.site.code)

    @admin.display(description="dose", ordering="dose_level__order")
    def dose_level_code(self, obj):
        if obj.dose_level is None:
            return "-"
        return format_html('<span title="{}">{}</span>', obj.dose_level, obj.dose_level.code)

    @admin.display(description="allocation")
    def allocation(self, obj):
        return getattr(obj, "_allocation", None) or "-"

    @admin.display(description="USUBJID")
    def usubjid(self, obj):
        return obj.usubjid if obj.subject_number else "-"

    # -- form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ENTRY_FIELDS
        fields = [*ENTRY_FIELDS, *COMPUTED_FIELDS, "reason_for_change"]
        if not roles.sees_birth_dates(request.user):
            fields.remove("birth_date")
        return [*fields, "audit_trail"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fixed = ["trial"] + (["site"] if obj.subject_number else [])
        return [*fixed, *COMPUTED_FIELDS, "audit_trail"]

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_formsets_with_inlines(self, request, obj=None):
        """An inline absent from a POST (a client posting the subject only) is unchanged."""
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            prefix = formset.get_default_prefix()
            if request.method == "POST" and f"{prefix}-TOTAL_FORMS" not in request.POST:
                continue
            yield formset, inline

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, EligibilityAnswerInline):
            kwargs["form_kwargs"] = {"criteria": inline.criteria_of(obj)}
            kwargs["initial"] = [{"criterion_key": pk} for pk in inline.unanswered(obj)]
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "site":
            formfield.label_from_instance = lambda site: f"{site.trial} · {site}"
        return formfield

    def save_model(self, request, obj, form, change):
        if not change:
            obj.protocol_version = obj.trial.current_version()
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        reason = getattr(form.instance, "_admin_reason", "")
        context = (change_reason(reason, request.user) if change and reason
                   else contextlib.nullcontext())
        with transaction.atomic(), context:
            super().save_related(request, form, formsets, change)

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            messages.info(request, "Answer the eligibility criteria below, then enroll.")
            return HttpResponseRedirect(reverse("admin:subjects_subject_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    # -- subject page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context["overview"] = subject_overview(obj, request.user)
            context["can_enter_data"] = roles.can_enter_data(request.user)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/enroll/", view(self.enroll_view), name="subjects_subject_enroll"),
            path("<int:pk>/screen-failure/", view(self.screen_failure_view),
                 name="subjects_subject_screen_failure"),
            path("<int:pk>/status/", view(self.status_view), name="subjects_subject_status"),
            path("<int:pk>/retire/", view(self.retire_view), name="subjects_subject_retire"),
            *super().get_urls(),
        ]

    def _subject(self, request, pk) -> Subject:
        subject = self.get_queryset(request).select_related(
            "trial", "site", "protocol_version", "arm").filter(pk=pk).first()
        if subject is None:
            raise Http404("No such subject in your trials and sites.")
        return subject

    def _back(self, subject):
        return HttpResponseRedirect(reverse("admin:subjects_subject_change", args=[subject.pk]))

    def enroll_view(self, request, pk):
        subject = self._subject(request, pk)
        form = EnrollForm(request.POST or None, subject=subject, user=request.user)

        def perform(data):
            try:
                enrolled = enrollment.enroll(
                    subject, enrolled_on=data["enrolled_on"], day0=data.get("day0"),
                    arm_code=data.get("arm") or None, user=request.user)
            except enrollment.EnrollmentRefused as exc:
                report_problems(request, exc.problems, "Enrollment refused:")
                return None
            label = arm_label_for(enrolled, request.user)
            dose = f", dose level {dose_text(enrolled.dose_level)}" if enrolled.dose_level_id \
                else ""
            messages.success(request, f"Enrolled as {enrolled.subject_number}: "
                                      f"{label}{dose}; the visit calendar is planned.")
            return self._back(subject)

        problems = enrollment.eligibility_problems(subject)
        intro = ("Every criterion is answered favourably." if not problems else
                 f"{len(problems)} eligibility problem(s) remain; enrollment will be refused "
                 "until they are resolved.")
        return service_form_view(self, request, subject, form, title="Enroll", perform=perform,
                                 intro=intro, submit="Enroll",
                                 rename={"consent_date": "enrolled_on"})

    def screen_failure_view(self, request, pk):
        subject = self._subject(request, pk)
        form = DatedReasonForm(request.POST or None, initial={"on": timezone.localdate()})

        def perform(data):
            enrollment.screen_fail(subject, on=data["on"], reason=data["reason"],
                                   user=request.user)
            messages.success(request, "Recorded as a screen failure.")
            return self._back(subject)

        return service_form_view(self, request, subject, form, title="Screen failure",
                                 perform=perform, submit="Record screen failure",
                                 rename={"status_date": "on", "status": "reason"})

    def status_view(self, request, pk):
        subject = self._subject(request, pk)
        form = StatusForm(request.POST or None, subject=subject,
                          initial={"on": timezone.localdate()})

        def perform(data):
            if data["status"] == lifecycle.OFF_STUDY and data["reason"] == "death":
                services.record_death(subject, data["on"], request.user)
            else:
                services.change_status(subject, data["status"], data["on"], data["reason"],
                                       request.user)
            messages.success(request, f"Status changed to {data['status']}.")
            return self._back(subject)

        return service_form_view(self, request, subject, form, title="Change status",
                                 perform=perform, submit="Change status",
                                 rename={"status_date": "on", "death_date": "on"})

    def retire_view(self, request, pk):
        subject = self._subject(request, pk)
        form = RetireForm(request.POST or None)

        def perform(data):
            services.retire_subject(subject, data["reason"], request.user)
            messages.success(request, "Subject retired as entered in error (kept with its "
                                      "records and audit trail).")
            return self._back(subject)

        return service_form_view(self, request, subject, form, title="Retire subject "
                                 "entered in error", perform=perform, submit="Retire",
                                 rename={"subject": "reason", "retired_at": "reason"},
                                 intro="The subject and every record stay in the database and "
                                       "the audit trail; it leaves lists, the status matrix, "
                                       "cohorts and exports.")


def allocation_label(user):
    """The arm label, or ``Blinded`` where ``user`` is blinded to the subject's trial
    (``trials.masking.arm_label`` in one query for the page)."""
    return Case(When(Q(arm__isnull=False) & blinded_q(user), then=Value(BLINDED_ARM)),
                default=F("arm__label"), output_field=CharField())


# ---------------------------------------------------------------- service forms


class EnrollForm(forms.Form):
    enrolled_on = forms.DateField(widget=admin.widgets.AdminDateWidget,
                                  help_text="Date of enrollment (not in the future).")
    day0 = forms.DateField(widget=admin.widgets.AdminDateWidget, required=False,
                           help_text="Day 0 of the schedule; empty = the enrollment date.")

    def __init__(self, *args, subject: Subject, user, **kwargs):
        kwargs.setdefault("initial", {"enrolled_on": timezone.localdate()})
        super().__init__(*args, **kwargs)
        if not subject.trial.is_randomized:
            arms = subject.protocol_version.arms.order_by("sequence", "code")
            self.fields["arm"] = forms.ChoiceField(
                choices=[(a.code, f"{a.code}: {a.label}") for a in arms], required=False,
                help_text="Open-label design: the arm (cohort and dose level follow the "
                          "protocol's dose-finding rules).")


class DatedReasonForm(forms.Form):
    on = forms.DateField(widget=admin.widgets.AdminDateWidget, label="date")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class StatusForm(forms.Form):
    status = forms.ChoiceField()
    on = forms.DateField(widget=admin.widgets.AdminDateWidget, label="date")
    reason = forms.CharField(help_text=(
        "Off study: " + ", ".join(lifecycle.OFF_STUDY_REASONS) + ". Follow-up (treatment "
        "stopped): " + ", ".join(lifecycle.TREATMENT_STOP_REASONS) + "."))

    def __init__(self, *args, subject: Subject, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = sorted(lifecycle.TRANSITIONS.get(subject.status, ()) - {
            lifecycle.ENROLLED, lifecycle.SCREEN_FAILURE})
        labels = dict(Subject.Status.choices)
        self.fields["status"].choices = [(s, labels[s]) for s in allowed]


# ---------------------------------------------------------------- the subject overview


def dose_text(level) -> str:
    """``DL1 (2000000 cells/kg)``: a dose level in plain numbers."""
    if level is None:
        return ""
    if level.value is None:
        return f"{level.code} (dose not specified by the protocol)"
    return f"{level.code} ({plain(level.value)} {level.unit})"


def subject_overview(subject: Subject, user) -> dict:
    """Everything the subject page shows besides the form, in a fixed number of queries: the
    subject's own facts, then each section of ``settings.SUBJECTS_PAGE_SECTIONS``."""
    mask = text_masker(user, subject)
    overview = {
        "eligibility_problems": enrollment.eligibility_problems(subject),
        "allocation": arm_label_for(subject, user) if subject.arm_id else None,
        "dose_text": dose_text(subject.dose_level),
        "blinded": blinded_for(user, subject.trial),
        "is_screening": subject.status == lifecycle.SCREENING,
        "can_change_status": bool(lifecycle.TRANSITIONS.get(subject.status, frozenset())
                                  - {lifecycle.ENROLLED, lifecycle.SCREEN_FAILURE}),
        "today": timezone.localdate(),
        "as_of": dt.datetime.now(dt.UTC),
    }
    for section in page_sections.sections():
        overview |= section.overview(subject, user, mask)
    return overview
