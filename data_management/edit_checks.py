"""Edit checks: system queries on values that are allowed but suspicious (``rules``).

``run_edit_checks(subject)`` is idempotent: it never opens a second unresolved query for the
same check and target, nor re-raises values a closed query already accepted. Call it (or
queue ``data_management.tasks.run_edit_checks``) after data entry; it is not a signal.

Adverse events: :func:`grade_jump_findings` works on any sequence of grade episodes;
:func:`ae_episode_sequences` feeds it ``AdverseEvent.grade_episodes`` (``start_date``, ``grade``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.apps import apps

from . import rules
from .queries import open_system_query


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


CHECKS = (visit_window_findings, weight_change_findings, ae_grade_findings)


def run_edit_checks(subject) -> list:
    """Run every edit check on the subject's data; returns the queries newly opened."""
    opened = []
    for check in CHECKS:
        for finding in check(subject):
            query = open_system_query(finding.record, finding.field_name, finding.check_code,
                                      finding.check_value, finding.text)
            if query is not None:
                opened.append(query)
    return opened
