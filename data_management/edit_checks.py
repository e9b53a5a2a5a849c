"""Edit checks: system queries on values that are allowed but suspicious (``rules``).

``run_edit_checks(subject)`` is idempotent: it never opens a second unresolved query for the
same check and target, nor re-raises values a person already accepted by closing the query;
and it closes, by itself, the system queries whose finding no longer holds (the data was
corrected, the overdue visit recorded). ``data_management.guards`` queues it through the
outbox after every save of a record a check reads (``WATCHED``), once per transaction and
subject; the daily ``raise_overdue_visit_queries`` runs the time-dependent overdue check.

Adverse events: :func:`grade_jump_findings` works on any sequence of grade episodes;
:func:`ae_episode_sequences` feeds it ``AdverseEvent.grade_episodes`` (``start_date``, ``grade``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.apps import apps
from django.utils import timezone

from subjects import plausibility

from . import rules
from .queries import close_system_query, open_system_query


@dataclass(frozen=True)
class Finding:
    record: object
    field_name: str
    check_code: str
    check_value: str
    text: str


def visit_window_findings(subject) -> Iterator[Finding]:
    visit_model = apps.get_model("visits", "Visit")
    visits = visit_model.objects.filter(subject=subject, actual_date__isnull=False,
                                        retired_at__isnull=True)
    for visit in visits.order_by("actual_date", "pk"):
        if rules.out_of_window(visit.actual_date, visit.window_low, visit.window_high):
            yield Finding(
                visit, "actual_date", "visit_out_of_window",
                f"{visit.actual_date}|{visit.window_low}..{visit.window_high}",
                f"Visit {visit.code} was done on {visit.actual_date}, outside its window "
                f"{visit.window_low} to {visit.window_high}. Please confirm the date or "
                "document the protocol deviation.",
            )


def weight_change_findings(subject) -> Iterator[Finding]:
    exposure_model = apps.get_model("visits", "Exposure")
    exposures = list(exposure_model.objects.filter(
        subject=subject, weight_kg__isnull=False, retired_at__isnull=True,
    ).order_by("administered_on", "pk"))
    weights = [e.weight_kg for e in exposures]
    for index in rules.weight_changes(weights):
        previous, current = exposures[index - 1], exposures[index]
        change = rules.weight_change(previous.weight_kg, current.weight_kg) * 100
        yield Finding(
            current, "weight_kg", "weight_change",
            f"{previous.weight_kg}->{current.weight_kg}",
            f"Weight {current.weight_kg} kg on {current.administered_on} differs by "
            f"{change:.0f}% from {previous.weight_kg} kg on {previous.administered_on} (more "
            "than 10%). Please confirm the weight: the dose is calculated from it.",
        )


def grade_jump_findings(episodes: Iterable, *, start: str = "start_date",
                        grade: str = "grade") -> Iterator[Finding]:
    """Findings for grade episode records (ordered by start) whose grade rises by 3 or more
    within a day; ``start`` and ``grade`` name the episode model's fields."""
    episodes = list(episodes)
    pairs = [(getattr(e, start), int(getattr(e, grade))) for e in episodes]
    for index in rules.grade_jumps(pairs):
        before, after = episodes[index - 1], episodes[index]
        yield Finding(
            after, grade, "ae_grade_jump", f"{pairs[index - 1][1]}->{pairs[index][1]}",
            f"The grade rose from {pairs[index - 1][1]} on {getattr(before, start)} to "
            f"{pairs[index][1]} on {getattr(after, start)} (3 or more grades within a day). "
            "Please confirm the grades against source.",
        )


def ae_episode_sequences(subject) -> Iterable[Iterable]:
    """The grade episodes of each adverse event of the subject, ordered by start (none when
    the adverse-event app has no ``AdverseEvent`` model with ``grade_episodes``)."""
    try:
        model = apps.get_model("adverse_events", "AdverseEvent")
    except LookupError:
        return ()
    if not hasattr(model, "grade_episodes"):
        return ()
    events = model.objects.filter(subject=subject, retired_at__isnull=True).order_by("pk")
    return [ae.grade_episodes.filter(retired_at__isnull=True).order_by("start_date", "pk")
            for ae in events]


def ae_grade_findings(subject) -> Iterator[Finding]:
    for episodes in ae_episode_sequences(subject):
        yield from grade_jump_findings(episodes)


def overdue_visit_findings(subject) -> Iterator[Finding]:
    """Visits past the end of their window without data (``Visit.objects.overdue()``)."""
    visit_model = apps.get_model("visits", "Visit")
    for visit in visit_model.objects.filter(subject=subject).overdue().order_by("window_high",
                                                                                  "pk"):
        yield Finding(
            visit, "actual_date", "visit_overdue", f"{visit.window_high}",
            f"Visit {visit.code} was due by {visit.window_high} and has no data. Please record "
            "it, or mark it missed with the reason.",
        )


def plausibility_findings(subject) -> Iterator[Finding]:
    """The plausibility rules of the door (``subjects.plausibility``, EDC plausibility
    defaults) applied to data already saved: a birth date no longer before a corrected
    consent date, body sizes or amounts saved before the rule or by a bulk path."""
    today = timezone.localdate()
    problem = plausibility.birth_date_problem(subject.birth_date, subject.consent_date, today)
    if problem is not None:
        yield Finding(subject, "birth_date", "implausible_value",
                      f"{subject.birth_date}|{subject.consent_date}",
                      f"Birth date: {problem} Please check it against source.")
    exposure_model = apps.get_model("visits", "Exposure")
    checks = (("weight_kg", plausibility.weight_problem),
              ("height_cm", plausibility.height_problem),
              ("dose_value", plausibility.amount_problem),
              ("given_total", plausibility.amount_problem))
    for exposure in exposure_model.objects.filter(subject=subject, retired_at__isnull=True):
        for field, check in checks:
            value = getattr(exposure, field)
            if (problem := check(value)) is not None:
                yield Finding(exposure, field, "implausible_value", f"{value}",
                              f"{field}: {problem} Please check it against source.")


#: check -> the check codes it raises and the models (``app_label.model``) whose saves can
#: change its findings.
CHECKS = {
    visit_window_findings: (("visit_out_of_window",), ("visits.visit",)),
    weight_change_findings: (("weight_change",), ("visits.exposure",)),
    ae_grade_findings: (("ae_grade_jump",), ("adverse_events.adverseevent",
                                             "adverse_events.gradeepisode")),
    overdue_visit_findings: (("visit_overdue",), ("visits.visit",)),
    plausibility_findings: (("implausible_value",), ("subjects.subject", "visits.exposure")),
}
WATCHED = frozenset(label for _, labels in CHECKS.values() for label in labels)


def run_edit_checks(subject, checks=None) -> list:
    """Run the edit checks (default: all) on the subject's data: open a query per new
    finding, close the system queries of these checks whose finding is gone.  Returns the
    queries newly opened."""
    query_model = apps.get_model("data_management", "Query")
    checks = tuple(CHECKS) if checks is None else tuple(checks)
    opened, holding = [], set()
    for check in checks:
        for finding in check(subject):
            holding.add((finding.check_code, type(finding.record)._meta.label_lower,
                         finding.record.pk, finding.field_name))
            query = open_system_query(finding.record, finding.field_name, finding.check_code,
                                      finding.check_value, finding.text)
            if query is not None:
                opened.append(query)
    codes = [code for check in checks for code in CHECKS[check][0]]
    unresolved = query_model.objects.filter(
        subject=subject, origin="system", check_code__in=codes,
        state__in=("open", "answered")).select_related("content_type")
    for query in unresolved:
        key = (query.check_code, f"{query.content_type.app_label}.{query.content_type.model}",
               query.object_id, query.field_name)
        if key not in holding:
            close_system_query(query)
    return opened
