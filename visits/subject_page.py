"""The visits' part of the admin's subject list and page (``subjects.page_sections``):
overdue visits (column and filter, ``VisitQuerySet.overdue``, the one home of the rule), the
schedule, exposures, tumour assessments and QLQ-C30 forms with their scores."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from edc.core.admin import plain
from subjects.page_sections import SubjectPageSection

from .models import Visit
from .services import unscheduled_products


class SubjectsWithOverdueVisitsFilter(admin.SimpleListFilter):
    title = "overdue visits"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "with overdue visits"), ("no", "none overdue")]

    def queryset(self, request, queryset):
        overdue = Exists(Visit.objects.overdue().filter(subject=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


@admin.display(description="overdue", ordering="_overdue")
def overdue_visits(subject):
    return subject._overdue or ""


class Schedule(SubjectPageSection):
    list_display = (overdue_visits,)
    list_filter = (SubjectsWithOverdueVisitsFilter,)

    def annotate(self, queryset, user):
        """The number of overdue visits of each subject (one correlated count for the page)."""
        counted = (Visit.objects.overdue().filter(subject=OuterRef("pk")).order_by()
                   .values("subject").annotate(n=Count("pk")).values("n"))
        return queryset.annotate(
            _overdue=Coalesce(Subquery(counted, output_field=IntegerField()), 0))

    def overview(self, subject, user, mask) -> dict:
        visits = list(subject.visits.with_overdue(timezone.localdate())
                      .order_by("target_date", "code"))
        for visit in visits:
            visit.shown_intervention = mask(visit.intervention)
            visit.is_treatment = visit.kind in ("infusion", "administration", "month")
        exposures = list(subject.exposures.select_related("intervention", "visit"))
        for exposure in exposures:
            exposure.product = mask(exposure.intervention.agent)
            exposure.dose_text = f"{plain(exposure.dose_value)} {exposure.dose_unit}"
            exposure.planned_text = (f"{plain(exposure.planned_total)} {exposure.total_unit}"
                                     if exposure.planned_total is not None else "")
            exposure.given_text = plain(exposure.given_total)
        forms = list(subject.qlq_c30_forms.select_related("visit", "score").order_by(
            "completion_date"))
        for form in forms:
            form.scores = getattr(form, "score", None)
        return {
            "visits": visits,
            "overdue_count": sum(v.is_overdue for v in visits),
            "exposures": exposures,
            "unscheduled_products": unscheduled_products(subject),
            "tumour_assessments": list(subject.tumour_assessments.select_related("visit")),
            "qlq_forms": forms,
            "deterioration": list(subject.qlq_c30_deterioration.order_by("scale")),
        }
