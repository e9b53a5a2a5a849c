"""Admin for the visit calendar and the forms recorded at visits.

Visits are generated from the protocol (never added by hand) and change through the services
only: "record done" (``services.record_visit``), "missed" (``services.mark_missed``, also a list
action with a reason), "record exposure" (``services.record_exposure``: planned dose, BSA and
total computed there and shown read-only) and "tumour assessment"
(``services.record_tumour_assessment``). QLQ-C30 forms are entered here; saving one queues its
scoring and the subject's time to deterioration (``QlqC30Form.queue_scoring``).
Users blinded to a trial see "study product (blinded)" wherever the product differs by arm.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, Value, When
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from edc.core import roles
from edc.core.admin import (
    AllocationGuard,
    ClinicalAdmin,
    ReasonForChangeForm,
    ScopedRelatedFilter,
    blinded_for,
    blinded_q,
    errors_onto_form,
    plain,
    service_form_view,
)
from subjects import lifecycle
from subjects.admin import dose_text
from trials.blinding import BLINDED_PRODUCT
from trials.masking import text_masker

from . import dosing, qlq_c30, services
from .models import (
    ComputationState,
    Exposure,
    QlqC30Deterioration,
    QlqC30Form,
    TumourAssessment,
    Visit,
    overdue_q,
)

SUBJECT_FILTERS = [("subject__trial", ScopedRelatedFilter), ("subject__site", ScopedRelatedFilter)]
SUBJECT_SEARCH = ["subject__subject_number", "subject__screening_number"]
TREATMENT_KINDS = (Visit.Kind.INFUSION, Visit.Kind.ADMINISTRATION, Visit.Kind.MONTH)
ASSESSMENT_KINDS = (Visit.Kind.ASSESSMENT, Visit.Kind.BASELINE, Visit.Kind.FOLLOW_UP,
                    Visit.Kind.UNSCHEDULED)


def blinded_annotation(user):
    """``_blinded``: the row's trial is blinded for ``user`` (one query for the page)."""
    return Case(When(blinded_q(user, "subject__trial"), then=Value(True)), default=Value(False),
                output_field=BooleanField())


def subject_link(subject):
    return format_html('<a href="{}">{}</a>',
                       reverse("admin:subjects_subject_change", args=[subject.pk]), subject)


class SubjectScoped(ClinicalAdmin):
    scope_trial, scope_site = "subject__trial", "subject__site"

    @admin.display(description="subject", ordering="subject__subject_number")
    def subject_link(self, obj):
        return subject_link(obj.subject)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "overdue (planned, past its window)"), ("no", "not overdue")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.exclude(overdue_q())
        return queryset


# ---------------------------------------------------------------- visits


class MissedReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the visit did not take place (audit trail).")


class RecordVisitForm(forms.Form):
    actual_date = forms.DateField(widget=admin.widgets.AdminDateWidget)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Required to correct the date of a visit already done.")

    def __init__(self, *args, visit: Visit, **kwargs):
        super().__init__(*args, **kwargs)
        self.visit = visit

    def clean(self):
        cleaned = super().clean()
        if self.visit.status == Visit.Status.DONE and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "A reason for change is required to correct a visit date.")
        return cleaned


class ExposureForm(forms.Form):
    intervention = forms.ModelChoiceField(queryset=None, help_text="The product given.")
    administered_on = forms.DateField(widget=admin.widgets.AdminDateWidget)
    dose_value = forms.DecimalField(max_digits=24, decimal_places=6,
                                    help_text="Dose as prescribed, in the dose unit.")
    dose_unit = forms.ChoiceField(choices=[(u, u) for u in dosing.UNIT_TOTALS])
    weight_kg = forms.DecimalField(max_digits=6, decimal_places=2, required=False)
    height_cm = forms.DecimalField(max_digits=6, decimal_places=2, required=False,
                                   help_text="Needed for doses per m² (Mosteller BSA).")
    given_total = forms.DecimalField(max_digits=30, decimal_places=6, required=False,
                                     help_text="Total amount actually given (optional).")
    interrupted = forms.BooleanField(required=False)
    interruption_reason = forms.CharField(required=False)

    def __init__(self, *args, visit: Visit, blinded: bool, **kwargs):
        super().__init__(*args, **kwargs)
        subject = visit.subject
        interventions = subject.protocol_version.interventions.all()
        self.fields["intervention"].queryset = interventions
        planned = next((i for i in interventions if i.code == visit.intervention), None)
        if blinded:
            # The product of a visit is fixed by the (concealed) arm: it is neither shown nor
            # chosen, not even as a hidden id (the id would tell the products apart).
            del self.fields["intervention"]
            self.planned = planned
        elif planned is not None:
            self.fields["intervention"].initial = planned.pk

    def clean(self):
        cleaned = super().clean()
        if "intervention" not in self.fields:
            cleaned["intervention"] = self.planned
        return cleaned


class TumourForm(forms.Form):
    assessment_date = forms.DateField(widget=admin.widgets.AdminDateWidget)
    method = forms.ChoiceField(choices=TumourAssessment.Method.choices)
    criteria = forms.ChoiceField(choices=TumourAssessment.Criteria.choices)
    overall_response = forms.CharField(max_length=5, help_text=(
        "RECIST 1.1 / mRECIST: CR, PR, SD, PD, NE; iRECIST: iCR, iPR, iSD, iUPD, iCPD, NE."))


def planned_dose(visit: Visit) -> tuple[str, str] | None:
    """The protocol's dose for the visit's product (``services.planned_dose_for``)."""
    subject = visit.subject
    if not visit.intervention or subject.arm_id is None:
        return None
    intervention = subject.protocol_version.interventions.filter(
        code=visit.intervention).first()
    dose = services.planned_dose_for(subject, intervention) if intervention else None
    return None if dose is None else (plain(dose[0]), dose[1])


@admin.register(Visit)
class VisitAdmin(SubjectScoped):
    change_form_template = "admin/visits/visit/change_form.html"
    list_display = ["subject_link", "code", "kind", "cycle", "product", "target_date",
                    "window", "actual_date", "status", "is_overdue", "out_of_window"]
    list_display_links = ["code"]
    list_filter = [*SUBJECT_FILTERS, "status", OverdueFilter, "kind", "qlq_c30_due"]
    search_fields = [*SUBJECT_SEARCH, "code"]
    list_select_related = ["subject"]
    date_hierarchy = "target_date"
    actions = ["mark_missed"]
    fields = ["subject_link", "code", "kind", "cycle", "product", "target_date", "window_low",
              "window_high", "actual_date", "status", "status_reason", "qlq_c30_due",
              "is_overdue", "out_of_window"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).with_overdue().annotate(
            _blinded=blinded_annotation(request.user))

    def has_add_permission(self, request) -> bool:
        return False  # visits come from the protocol's plan (regenerate_visits)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # visits change through the buttons (services), never by editing

    @admin.display(description="product")
    def product(self, obj):
        if obj.intervention and getattr(obj, "_blinded", True):
            return BLINDED_PRODUCT
        return obj.intervention or "-"

    @admin.display(description="window")
    def window(self, obj):
        if obj.window_low is None:
            return "-"
        return f"{obj.window_low:%Y-%m-%d} … {obj.window_high:%Y-%m-%d}"

    @admin.display(description="overdue", boolean=True, ordering="is_overdue")
    def is_overdue(self, obj):
        return obj.is_overdue  # Visit.objects.with_overdue()

    @admin.display(description="out of window", boolean=True)
    def out_of_window(self, obj):
        return obj.out_of_window

    @admin.action(description="Mark selected visits missed (with a reason)",
                  permissions=["enter_data"])
    def mark_missed(self, request, queryset):
        form = MissedReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, refused = 0, []
            for visit in queryset:
                try:
                    services.mark_missed(visit, form.cleaned_data["reason"], request.user)
                    done += 1
                except ValidationError as exc:
                    refused.append(f"{visit}: {'; '.join(exc.messages)}")
            if done:
                messages.success(request, f"{done} visit(s) marked missed.")
            for problem in refused:
                messages.error(request, f"Not marked missed: {problem}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Mark visits missed", "opts": self.opts, "form": form,
            "visits": queryset, "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "mark_missed",
        }
        return TemplateResponse(request, "admin/visits/visit/mark_missed.html", context)

    # -- service pages

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/record/", view(self.record_view), name="visits_visit_record"),
            path("<int:pk>/missed/", view(self.missed_view), name="visits_visit_missed"),
            path("<int:pk>/exposure/", view(self.exposure_view), name="visits_visit_exposure"),
            path("<int:pk>/tumour/", view(self.tumour_view), name="visits_visit_tumour"),
            *super().get_urls(),
        ]

    def _visit(self, request, pk) -> Visit:
        visit = self.get_queryset(request).select_related(
            "subject__trial", "subject__protocol_version", "subject__arm",
            "subject__dose_level").filter(pk=pk).first()
        if visit is None:
            raise Http404("No such visit in your trials and sites.")
        return visit

    @staticmethod
    def _to_subject(visit):
        return HttpResponseRedirect(
            reverse("admin:subjects_subject_change", args=[visit.subject_id]) + "#visit-calendar")

    def record_view(self, request, pk):
        visit = self._visit(request, pk)
        form = RecordVisitForm(request.POST or None, visit=visit, initial={
            "actual_date": visit.actual_date or min(visit.target_date or timezone.localdate(),
                                                    timezone.localdate())})

        def perform(data):
            services.record_visit(visit, data["actual_date"], request.user,
                                  data.get("reason") or "")
            messages.success(request, f"Visit {visit.code} recorded as done.")
            return self._to_subject(visit)

        return service_form_view(self, request, visit, form, title=f"Record visit {visit.code}",
                                 perform=perform, submit="Record visit",
                                 intro=self._window_text(visit))

    def missed_view(self, request, pk):
        visit = self._visit(request, pk)
        form = MissedReasonForm(request.POST or None)

        def perform(data):
            services.mark_missed(visit, data["reason"], request.user)
            messages.success(request, f"Visit {visit.code} marked missed.")
            return self._to_subject(visit)

        return service_form_view(self, request, visit, form, title=f"Visit {visit.code} missed",
                                 perform=perform, submit="Mark missed",
                                 intro=self._window_text(visit))

    def exposure_view(self, request, pk):
        visit = self._visit(request, pk)
        subject = visit.subject
        blinded = blinded_for(request.user, subject.trial)
        dose = None if blinded else planned_dose(visit)
        initial = {"administered_on": min(visit.actual_date or visit.target_date
                                          or timezone.localdate(), timezone.localdate())}
        if dose:
            initial.update(dose_value=dose[0], dose_unit=dose[1])
        form = ExposureForm(request.POST or None, visit=visit, blinded=blinded, initial=initial)

        def perform(data):
            data = dict(data)
            intervention = data.pop("intervention")
            if intervention is None:
                raise ValidationError({"intervention": "This visit has no planned product."})
            exposure = services.record_exposure(visit, intervention=intervention,
                                                user=request.user, **data)
            messages.success(request, (
                f"Exposure recorded at {visit.code}: planned total "
                f"{plain(exposure.planned_total) if exposure.planned_total else '-'} "
                f"{exposure.total_unit}."))
            return HttpResponseRedirect(
                reverse("admin:subjects_subject_change", args=[subject.pk]) + "#exposures")

        facts = [("Visit", f"{visit.code} ({visit.get_kind_display()})"),
                 ("Product", BLINDED_PRODUCT if blinded else visit.intervention or "-")]
        if dose:
            facts.append(("Protocol dose", f"{dose[0]} {dose[1]}"))
        if subject.dose_level_id and not blinded:
            facts.append(("Dose level", dose_text(subject.dose_level)))
        return service_form_view(
            self, request, visit, form, title=f"Record exposure at {visit.code}",
            perform=perform, submit="Record exposure", clean_message=text_masker(
                request.user, subject),
            intro="The planned total (dose × weight, or × Mosteller BSA for doses per m²) is "
                  "computed when saved.", context={"facts": facts})

    def tumour_view(self, request, pk):
        visit = self._visit(request, pk)
        form = TumourForm(request.POST or None, initial={
            "assessment_date": min(visit.actual_date or visit.target_date
                                   or timezone.localdate(), timezone.localdate())})

        def perform(data):
            services.record_tumour_assessment(visit, user=request.user, **data)
            messages.success(request, f"Tumour assessment recorded at {visit.code}.")
            return HttpResponseRedirect(reverse("admin:subjects_subject_change",
                                                args=[visit.subject_id]) + "#tumour-assessments")

        return service_form_view(self, request, visit, form,
                                 title=f"Tumour assessment at {visit.code}", perform=perform,
                                 submit="Record assessment")

    @staticmethod
    def _window_text(visit) -> str:
        if visit.window_low is None:
            return f"Target {visit.target_date or '-'}."
        return (f"Target {visit.target_date}, window {visit.window_low} … {visit.window_high}; "
                "a date outside the window is recorded as a deviation.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {**(extra_context or {}), "can_enter_data": roles.can_enter_data(request.user)}
        return super().change_view(request, object_id, form_url, context)


# ---------------------------------------------------------------- exposures


class ExposureCorrectionForm(ReasonForChangeForm):
    """Correct entered values of an exposure (``services.correct_exposure``: planned total,
    dose checks and deviations recomputed); the product and the visit are not corrected here:
    an exposure entered against the wrong one is retired and recorded again."""

    class Meta:
        model = Exposure
        fields = list(services.CORRECTABLE)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and not self.errors:
            changes = {name: cleaned.get(name) for name in self.changed_data
                       if name in services.CORRECTABLE}
            try:
                services.check_correction(Exposure.objects.get(pk=self.instance.pk), changes)
            except ValidationError as exc:
                errors_onto_form(self, exc)
        return cleaned


class TreatmentForm(forms.Form):
    """A dosing period of a daily product, or a product the schedule has no visit for."""

    intervention = forms.ModelChoiceField(queryset=None, help_text="The product given.")
    administered_on = forms.DateField(widget=admin.widgets.AdminDateWidget,
                                      label="Date given / first day of the period")
    end_date = forms.DateField(widget=admin.widgets.AdminDateWidget, required=False,
                               help_text="Last day of a dosing period (daily products).")
    dose_value = forms.DecimalField(max_digits=24, decimal_places=6,
                                    help_text="Dose per administration, in the dose unit.")
    dose_unit = forms.ChoiceField(choices=[(u, u) for u in dosing.UNIT_TOTALS])
    weight_kg = forms.DecimalField(max_digits=6, decimal_places=2, required=False)
    height_cm = forms.DecimalField(max_digits=6, decimal_places=2, required=False)
    given_total = forms.DecimalField(max_digits=30, decimal_places=6, required=False)
    interrupted = forms.BooleanField(required=False,
                                     help_text="Dosing was interrupted: this period ends here.")
    interruption_reason = forms.CharField(required=False)

    def __init__(self, *args, subject, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["intervention"].queryset = subject.protocol_version.interventions.filter(
            code__in=services.unscheduled_products(subject))


@admin.register(Exposure)
class ExposureAdmin(SubjectScoped):
    form = ExposureCorrectionForm
    list_display = ["id", "subject_link", "visit", "administered_on", "end_date", "product",
                    "dose", "frequency", "weight_kg", "height_cm", "bsa_m2", "planned_total",
                    "total_unit", "given_total", "interrupted"]
    list_filter = [*SUBJECT_FILTERS, "interrupted", "dose_unit"]
    search_fields = [*SUBJECT_SEARCH, "visit__code"]
    list_select_related = ["subject", "visit__subject", "intervention"]
    date_hierarchy = "administered_on"
    blinded_history_fields = ("intervention_id",)
    fields = ["subject_link", "visit", "product", "administered_on", "end_date", "frequency",
              "dose_value", "dose_unit", "planned_dose", "weight_kg", "height_cm", "bsa_m2",
              "planned_total", "total_unit", "start_time", "stop_time", "given_total",
              "interrupted", "interruption_reason", "retired_at", "retired_reason",
              "reason_for_change"]
    readonly_fields = ["subject_link", "visit", "product", "frequency", "dose_unit",
                       "planned_dose", "bsa_m2", "planned_total", "total_unit", "retired_at",
                       "retired_reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_blinded=blinded_annotation(request.user))

    def has_add_permission(self, request) -> bool:
        return False  # from the visit or the subject page (services.record_exposure)

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data.get(name) for name in form.changed_data
                   if name in services.CORRECTABLE}
        if change and changes:
            services.correct_exposure(obj, changes, form.cleaned_data["reason_for_change"],
                                      request.user)

    @admin.display(description="product")
    def product(self, obj):
        return BLINDED_PRODUCT if getattr(obj, "_blinded", True) else obj.intervention.agent

    @admin.display(description="dose")
    def dose(self, obj):
        return f"{plain(obj.dose_value)} {obj.dose_unit}"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("record/<int:subject_pk>/", view(self.record_view),
                 name="visits_exposure_record"),
            path("<int:pk>/retire/", view(self.retire_view), name="visits_exposure_retire"),
            *super().get_urls(),
        ]

    def record_view(self, request, subject_pk):
        from subjects.models import Subject

        subject = roles.scope(Subject.objects.select_related(
            "trial", "protocol_version", "arm", "dose_level"), request.user).filter(
            pk=subject_pk).first()
        if subject is None:
            raise Http404("No such subject in your trials and sites.")
        form = TreatmentForm(request.POST or None, subject=subject,
                             initial={"administered_on": timezone.localdate()})

        def perform(data):
            data = dict(data)
            exposure = services.record_exposure(None, subject=subject, user=request.user,
                                                **data)
            messages.success(request, f"Treatment recorded from {exposure.administered_on}"
                                      f"{f' to {exposure.end_date}' if exposure.end_date else ''}.")
            return HttpResponseRedirect(
                reverse("admin:subjects_subject_change", args=[subject.pk]) + "#exposures")

        return service_form_view(
            self, request, subject, form, title="Record treatment (dosing period or "
            "administration without a visit)", perform=perform, submit="Record treatment",
            clean_message=text_masker(request.user, subject),
            intro="Daily products are recorded as dosing periods: first and last day, dose "
                  "and frequency; an interruption ends a period and the next one starts when "
                  "dosing resumes (CDISC EX).")

    def retire_view(self, request, pk):
        exposure = self.get_queryset(request).filter(pk=pk).select_related("subject").first()
        if exposure is None:
            raise Http404("No such exposure in your trials and sites.")
        form = MissedReasonForm(request.POST or None)

        def perform(data):
            services.retire_exposure(exposure, data["reason"], request.user)
            messages.success(request, "Exposure retired (kept in the audit trail).")
            return HttpResponseRedirect(reverse("admin:subjects_subject_change",
                                                args=[exposure.subject_id]) + "#exposures")

        return service_form_view(self, request, exposure, form, title="Retire exposure "
                                 "entered in error", perform=perform, submit="Retire",
                                 clean_message=text_masker(request.user, exposure.subject))


# ---------------------------------------------------------------- tumour response


class TumourAssessmentForm(ReasonForChangeForm):
    class Meta:
        model = TumourAssessment
        fields = ["method", "criteria", "overall_response"]

    def clean(self):
        cleaned = super().clean()
        try:
            dosing.check_response(cleaned.get("criteria"), cleaned.get("overall_response"))
        except ValueError as exc:
            self.add_error("overall_response", str(exc))
        return cleaned


@admin.register(TumourAssessment)
class TumourAssessmentAdmin(SubjectScoped):
    form = TumourAssessmentForm
    list_display = ["id", "subject_link", "visit", "assessment_date", "method", "criteria",
                    "overall_response", "confirmed_progression"]
    list_filter = [*SUBJECT_FILTERS, "criteria", "overall_response", "confirmed_progression",
                   "method"]
    search_fields = [*SUBJECT_SEARCH, "visit__code"]
    list_select_related = ["subject", "visit__subject"]
    date_hierarchy = "assessment_date"
    fields = ["subject_link", "visit", "assessment_date", "method", "criteria",
              "overall_response", "confirmed_progression", "reason_for_change"]
    readonly_fields = ["subject_link", "visit", "assessment_date", "confirmed_progression"]

    def has_add_permission(self, request) -> bool:
        return False  # recorded from the visit (services.record_tumour_assessment)

    def save_model(self, request, obj, form, change):
        obj.confirmed_progression = (
            obj.overall_response == dosing.CONFIRMED_PROGRESSION[obj.criteria])
        super().save_model(request, obj, form, change)
        if obj.confirmed_progression and obj.subject.status == lifecycle.ON_TREATMENT:
            messages.warning(request, "This response confirms progression: stop treatment "
                                      "from the subject page (Change status) if it applies.")


# ---------------------------------------------------------------- QLQ-C30


class QlqC30AdminForm(ReasonForChangeForm):
    class Meta:
        model = QlqC30Form
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        subject, visit = cleaned.get("subject"), cleaned.get("visit")
        if subject is not None and visit is not None and visit.subject_id != subject.pk:
            self.add_error("visit", "This visit belongs to another subject.")
        try:
            services.check_qlq_form(
                subject, visit, cleaned.get("completion_date"),
                new=self.instance.pk is None or subject != self.instance.subject)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        responses = {key: cleaned.get(key) for key in qlq_c30.ITEM_KEYS}
        try:
            qlq_c30.score(responses)
        except ValueError as exc:
            item = str(exc).split(":", 1)[0]
            self.add_error(item if item in self.fields else None, str(exc))
        if cleaned.get("mode") == QlqC30Form.Mode.EPRO and self.instance.mode != "epro":
            self.add_error("mode", "A patient-completed form is recorded by the patient, "
                                   "through an ePRO link.")
        return cleaned


class ScoreStateFilter(admin.SimpleListFilter):
    title = "scoring"
    parameter_name = "scoring"

    def lookups(self, request, model_admin):
        return [*ComputationState.choices, ("none", "not scored")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(score__isnull=True)
        if self.value():
            return queryset.filter(score__state=self.value())
        return queryset


@admin.register(QlqC30Form)
class QlqC30FormAdmin(SubjectScoped):
    form = QlqC30AdminForm
    list_display = ["id", "subject_link", "visit", "completion_date", "mode", "unscheduled",
                    "scoring",
                    "global_health", "summary"]
    list_filter = [*SUBJECT_FILTERS, "mode", ScoreStateFilter]
    search_fields = [*SUBJECT_SEARCH, "visit__code"]
    list_select_related = ["subject", "visit__subject", "score"]
    date_hierarchy = "completion_date"
    fieldsets = [
        (None, {"fields": ["subject", "visit", "completion_date", "mode"]}),
        ("Items 1-28 (1 = not at all … 4 = very much)",
         {"fields": [tuple(f"q{i}" for i in range(n, min(n + 7, 29))) for n in (1, 8, 15, 22)]}),
        ("Items 29-30 (1 = very poor … 7 = excellent)", {"fields": [("q29", "q30")]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(self.fieldsets)
        if obj is not None:
            fieldsets.append(("Scores (computed; EORTC QLQ-C30 Scoring Manual, 3rd ed.)",
                              {"fields": ["scores"]}))
            fieldsets.append(("Change", {"fields": ["reason_for_change", "audit_trail"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), *(["scores"] if obj else [])]
        if obj is not None and obj.mode == QlqC30Form.Mode.EPRO:
            # the patient's answers: corrected only by an ePRO data clarification
            fields += ["subject", "visit", "completion_date", "mode", *qlq_c30.ITEM_KEYS]
        return fields

    @admin.display(description="scoring")
    @admin.display(description="unscheduled", boolean=True, ordering="visit__qlq_c30_due")
    def unscheduled(self, obj):
        """At a visit where the protocol schedules no QLQ-C30: out of time to deterioration
        unless the protocol allows it (``services.recompute_deterioration``)."""
        return not obj.visit.qlq_c30_due

    def scoring(self, obj):
        score = getattr(obj, "score", None)
        return score.state if score else "not scored"

    @admin.display(description="QL2")
    def global_health(self, obj):
        score = getattr(obj, "score", None)
        return "-" if score is None or score.QL2 is None else f"{score.QL2:.1f}"

    @admin.display(description="SUM")
    def summary(self, obj):
        score = getattr(obj, "score", None)
        return "-" if score is None or score.SUM is None else f"{score.SUM:.1f}"

    @admin.display(description="scores")
    def scores(self, obj):
        score = getattr(obj, "score", None)
        if score is None:
            return "not scored yet"
        head = format_html("<p>state: {}{}</p>", score.state,
                           f" ({score.error})" if score.error else "")
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", (
            (scale, qlq_c30.SCALE_NAMES.get(scale, scale),
             "-" if getattr(score, scale) is None else f"{getattr(score, scale):.1f}")
            for scale in qlq_c30.SCALES))
        return format_html("{}<table>{}</table>", head, rows)

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change or form.has_changed():
                obj.queue_scoring()


# ---------------------------------------------------------------- derived (read-only)


@admin.register(QlqC30Deterioration)
class QlqC30DeteriorationAdmin(AllocationGuard, admin.ModelAdmin):
    """Time to deterioration per scale (derived by a task from the scored forms)."""

    list_display = ["subject", "scale", "event", "event_date", "confirm_date", "censor_date",
                    "days", "computed_at"]
    list_filter = [*SUBJECT_FILTERS, "scale", "event"]
    search_fields = SUBJECT_SEARCH
    list_select_related = ["subject"]
    readonly_fields = [f.name for f in QlqC30Deterioration._meta.fields]

    def get_queryset(self, request):
        return roles.scope(super().get_queryset(request), request.user,
                           trial="subject__trial", site="subject__site")

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and bool(roles.roles_of(user))

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
