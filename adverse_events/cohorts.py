"""What each subject of a dose-finding arm contributes to the rule (ORM adapter).

Reads, for the allocated subjects of the dose-finding arms only (a subject of another arm never
enters an arm's cohort sequence), their cohort, dose level, first administration, the date they
left treatment (death, withdrawal, treatment stop), their effective DLT/TI flags with reasons and
their grade >= 3 and grade 5 AEs related (>= possible, ICH E2A) to the dose-finding product, as
``trials.dose_finding.SubjectCourse`` values. Evaluability, events and safety stops are decided
by the pure rules of :mod:`trials.dose_finding` (section 4, EDC safety defaults).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Min, Q

from subjects.models import Subject
from trials.dose_finding import Death, SubjectCourse

from .models import EFFECTIVE_FLAG, Attribution, ToxicityFlag

RELATED = ("possible", "probable", "definite")  # ICH E2A "reasonable possibility"


def _in_window(on: dt.date, administrations: list[dt.date], window_days: int | None) -> bool:
    """On or after an administration and at most ``window_days`` after the latest one before;
    with no window in the protocol, any time after the first administration."""
    before = [d for d in administrations if d <= on]
    if not before:
        return False
    return window_days is None or (on - max(before)).days <= window_days


def dose_finding_courses(trial, arm_codes, intervention_code: str,
                         window_days: int | None) -> list[SubjectCourse]:
    """One ``SubjectCourse`` per allocated subject of the arms ``arm_codes``."""
    from visits.models import Exposure

    subjects = list(
        Subject.objects.filter(trial=trial, arm__code__in=list(arm_codes),
                               dose_level__isnull=False, cohort__isnull=False,
                               retired_at__isnull=True)
        .exclude(status__in=[Subject.Status.SCREEN_FAILURE, Subject.Status.SCREENING])
        .select_related("dose_level")
        .annotate(first_dose=Min("exposures__administered_on",
                                 filter=Q(exposures__retired_at__isnull=True)))
    )
    ids = [s.pk for s in subjects]
    events: dict[int, list[str]] = defaultdict(list)
    for subject_id, reason in (ToxicityFlag.objects.filter(
            EFFECTIVE_FLAG, subject_id__in=ids, retired_at__isnull=True,
            adverse_event__retired_at__isnull=True)
            .order_by("subject_id", "pk").values_list("subject_id", "reason")):
        events[subject_id].append(reason)
    administrations: dict[int, list[dt.date]] = defaultdict(list)
    for subject_id, day in (Exposure.objects.filter(
            subject_id__in=ids, retired_at__isnull=True, intervention__code=intervention_code)
            .values_list("subject_id", "administered_on")):
        administrations[subject_id].append(day)
    severe: dict[int, list[str]] = defaultdict(list)
    deaths: dict[int, list[Death]] = defaultdict(list)
    for a in (Attribution.objects.filter(
            adverse_event__subject_id__in=ids, adverse_event__retired_at__isnull=True,
            adverse_event__grade__gte=3, retired_at__isnull=True,
            intervention__code=intervention_code, level__in=RELATED)
            .select_related("adverse_event__term").order_by("adverse_event__onset_date")):
        ae = a.adverse_event
        sid = ae.subject_id
        severe[sid].append(f"AE {ae.pk} {ae.term.term} grade {ae.grade} from "
                           f"{ae.onset_date.isoformat()} ({a.level})")
        if ae.grade == 5:
            on = ae.death_date or ae.onset_date
            deaths[sid].append(Death(ae.pk, on, ae.term.term,
                                     _in_window(on, administrations[sid], window_days)))
    courses = []
    for s in subjects:
        left = [d for d in (s.treatment_stop_date, s.death_date,
                            s.status_date if s.status == Subject.Status.OFF_STUDY else None) if d]
        reason = s.treatment_stop_reason or (s.status_reason if left else "")
        if s.death_date and min(left) == s.death_date:
            reason = "death"
        courses.append(SubjectCourse(
            subject=s.subject_number, cohort=s.cohort, level=s.dose_level.code,
            frequency=s.frequency_level, first_dose=s.first_dose,
            left_on=min(left) if left else None, left_reason=reason,
            events=tuple(events[s.pk]), deaths=tuple(deaths[s.pk]),
            severe_related=tuple(severe[s.pk])))
    return courses
