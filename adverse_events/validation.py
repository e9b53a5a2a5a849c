"""Validation of an adverse event before anything is saved (service layer, API and admin).

Every problem is reported at once, keyed by the field it concerns (nested fields as
``grade_episodes[1].grade``, ``attributions[0].intervention``), as one ``ValidationError``.

Rules:

* CTCAE v5.0: a grade applies to a term only where the term has a description for it; the
  "<SOC> - Other, specify" terms need the verbatim term.
* Dates: onset on or after consent, nothing in the future, resolution on or after onset.
* Grade episodes tile the AE without overlap or gap: the first starts on the onset date, each
  next one starts the day after the previous one ends, the last ends on the resolution date
  (or is open while the AE is ongoing). The AE's grade is the worst episode grade.
* Grade 5 (death related to the AE, CTCAE v5.0) is the last episode, needs the death date
  (the day of that episode, agreeing with the subject's death date if recorded) and makes the
  event serious with the "results in death" criterion (ICH E2A II.B).
* Seriousness (ICH E2A II.B): serious needs at least one criterion and a criterion needs
  serious; a serious AE needs the time the site became aware (it starts the 24-hour clock).
* Attribution only to interventions the subject received (an Exposure exists), one per
  intervention, and required for every intervention given on or before the onset; in a
  blinded trial a product and its matching placebo count as one (``trials.blinding``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import AdverseEvent, CtcaeTerm

ONE_DAY = dt.timedelta(days=1)


@dataclass
class EpisodeDraft:
    grade: int
    start_date: dt.date
    end_date: dt.date | None = None
    id: int | None = None


@dataclass
class AttributionDraft:
    intervention: object  # trials.models.Intervention
    level: str


class Errors(defaultdict):
    def __init__(self):
        super().__init__(list)

    def add(self, field: str, message: str) -> None:
        self[field].append(message)

    def raise_if_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


def _fmt(day: dt.date | None) -> str:
    return day.isoformat() if day else "ongoing"


def check_grade(term: CtcaeTerm, grade: int) -> str | None:
    """The refusal message when ``grade`` does not apply to ``term`` (CTCAE v5.0), else None."""
    allowed = term.allowed_grades()
    if grade in allowed:
        return None
    return (f"Grade {grade} does not apply to the CTCAE v5.0 term '{term.term}' "
            f"({term.meddra_code}); allowed grades: {', '.join(map(str, allowed))}.")


def validate(subject, values: dict, episodes: list[EpisodeDraft],
             attributions: list[AttributionDraft] | None, *, exposures=None,
             targets=None) -> None:
    """Refuse (``ValidationError``) an adverse event draft; ``values`` are AE field values.

    ``attributions=None`` skips the attribution checks (the admin checks them separately);
    ``exposures``: the subject's ``(intervention_id, administered_on)`` pairs, ``targets``:
    ``trials.masking.attribution_targets(subject)`` (each queried when not given).
    """
    errors = Errors()
    today = timezone.localdate()
    term, onset = values["term"], values["onset_date"]
    resolution, death_date = values.get("resolution_date"), values.get("death_date")
    if term.is_other_specify and not (values.get("verbatim_term") or "").strip():
        errors.add("verbatim_term", f"'{term.term}' needs the verbatim term.")
    if onset < subject.consent_date:
        errors.add("onset_date", f"Onset {onset} is before consent ({subject.consent_date}).")
    for name in ("onset_date", "resolution_date", "death_date"):
        if values.get(name) and values[name] > today:
            errors.add(name, f"{values[name]} is in the future.")
    if resolution and resolution < onset:
        errors.add("resolution_date", f"Resolution {resolution} is before onset {onset}.")
    worst = _check_episodes(errors, term, onset, resolution, episodes)
    _check_death(errors, subject, values, episodes, worst, death_date)
    _check_seriousness(errors, values, today)
    if attributions is not None:
        _check_attributions(errors, subject, onset, attributions, exposures, targets)
    errors.raise_if_any()


def validate_attributions(subject, onset: dt.date, attributions: list[AttributionDraft]) -> None:
    """The attribution checks of :func:`validate` alone."""
    errors = Errors()
    _check_attributions(errors, subject, onset, attributions, None, None)
    errors.raise_if_any()


def _check_episodes(errors, term, onset, resolution, episodes) -> int | None:
    if not episodes:
        errors.add("grade_episodes", "At least one grade episode is required.")
        return None
    order = sorted(range(len(episodes)), key=lambda i: (episodes[i].start_date, i))
    for i, ep in enumerate(episodes):
        message = check_grade(term, ep.grade)
        if message:
            errors.add(f"grade_episodes[{i}].grade", message)
        if ep.end_date is not None and ep.end_date < ep.start_date:
            errors.add(f"grade_episodes[{i}].end_date",
                       f"End {ep.end_date} is before start {ep.start_date}.")
    first = episodes[order[0]]
    if first.start_date != onset:
        errors.add(f"grade_episodes[{order[0]}].start_date",
                   f"The first grade episode starts {first.start_date}, not on the onset "
                   f"date {onset}.")
    for prev_i, next_i in zip(order, order[1:], strict=False):
        prev, nxt = episodes[prev_i], episodes[next_i]
        if prev.end_date is None or nxt.start_date <= prev.end_date:
            errors.add(f"grade_episodes[{next_i}].start_date",
                       f"Episode starting {nxt.start_date} overlaps the episode "
                       f"{prev.start_date}..{_fmt(prev.end_date)}.")
        elif nxt.start_date > prev.end_date + ONE_DAY:
            errors.add(f"grade_episodes[{next_i}].start_date",
                       f"Gap inside the AE: no grade recorded from {prev.end_date + ONE_DAY} "
                       f"to {nxt.start_date - ONE_DAY}.")
    last_i = order[-1]
    last = episodes[last_i]
    if resolution is None and last.end_date is not None:
        errors.add(f"grade_episodes[{last_i}].end_date",
                   f"The AE is ongoing but its last grade episode ends {last.end_date}: leave "
                   f"the end empty or give the AE's resolution date.")
    elif resolution is not None and last.end_date != resolution:
        errors.add(f"grade_episodes[{last_i}].end_date",
                   f"The last grade episode ends {_fmt(last.end_date)}, not on the resolution "
                   f"date {resolution}.")
    for i in order[:-1]:
        if episodes[i].grade == 5:
            errors.add(f"grade_episodes[{i}].grade",
                       "Grade 5 (death) can only be the last grade episode.")
    return max(ep.grade for ep in episodes)


def _check_death(errors, subject, values, episodes, worst, death_date) -> None:
    if worst == 5:
        fatal = next(ep for ep in episodes if ep.grade == 5)
        if death_date is None:
            errors.add("death_date", "A grade 5 (fatal) AE needs the death date.")
        elif death_date != fatal.start_date:
            errors.add("death_date", f"Death date {death_date} is not the day of the grade 5 "
                                     f"episode ({fatal.start_date}).")
        if not (values.get("serious") and values.get("sae_death")):
            errors.add("sae_death", "A grade 5 AE results in death: it is serious with the "
                                    "'results in death' criterion (ICH E2A).")
    elif death_date is not None:
        errors.add("death_date", "A death date belongs to a grade 5 (fatal) AE only.")
    if death_date and subject.death_date and death_date != subject.death_date:
        errors.add("death_date", f"Death date {death_date} disagrees with the subject's "
                                 f"recorded death date {subject.death_date}.")


def _check_seriousness(errors, values, today) -> None:
    criteria = [name for name in AdverseEvent.CRITERIA if values.get(name)]
    aware_at, reported_at = values.get("aware_at"), values.get("reported_at")
    if values.get("serious"):
        if not criteria:
            errors.add("serious", "A serious AE needs at least one seriousness criterion "
                                  "(ICH E2A: death, life-threatening, hospitalization, "
                                  "disability, congenital anomaly, medically important).")
        if aware_at is None:
            errors.add("aware_at", "A serious AE needs the date/time the site became aware "
                                   "(it starts the 24-hour reporting clock).")
    elif criteria:
        errors.add("serious", f"Seriousness criteria ({', '.join(criteria)}) are given but the "
                              f"AE is not marked serious.")
    now = timezone.now()
    if aware_at and aware_at > now:
        errors.add("aware_at", "The awareness time is in the future.")
    if aware_at and (values["onset_date"] - aware_at.date()).days > 1:  # 1 day: time zones
        errors.add("aware_at", "The site cannot become aware before the onset.")
    if reported_at and aware_at and reported_at < aware_at:
        errors.add("reported_at", "Reported before the site became aware.")
    if reported_at and reported_at > now:
        errors.add("reported_at", "The report time is in the future.")


def _check_attributions(errors, subject, onset, attributions, exposures, targets) -> None:
    """Attributions are checked against their targets (``trials.masking``): in a blinded trial
    a product and its matching placebo are one study treatment, so the checks (and their
    messages) never tell which of the two the subject received."""
    from trials.masking import attribution_name, attribution_targets
    from visits.models import Exposure

    if exposures is None:
        exposures = list(Exposure.objects.filter(subject=subject, retired_at__isnull=True)
                         .order_by()  # read as sets: no join for the default ordering
                         .values_list("intervention_id", "administered_on"))
    if targets is None:
        targets = attribution_targets(subject)

    def target(pk):
        return targets[pk].pk if pk in targets else pk

    received = {target(pk) for pk, _ in exposures}
    seen = set()
    for i, attribution in enumerate(attributions):
        agent = targets.get(attribution.intervention.pk, attribution.intervention)
        if agent.pk in seen:
            errors.add(f"attributions[{i}].intervention",
                       f"{attribution_name(agent, subject.trial)} is attributed twice.")
        seen.add(agent.pk)
        if agent.pk not in received:
            errors.add(f"attributions[{i}].intervention",
                       f"The subject never received {attribution_name(agent, subject.trial)} "
                       f"(no exposure recorded): an AE cannot be attributed to it.")
    due = {target(pk) for pk, day in exposures if day <= onset} - seen
    if due:
        by_pk = {t.pk: t for t in targets.values()}
        names = sorted(attribution_name(by_pk[pk], subject.trial) if pk in by_pk else str(pk)
                       for pk in due)
        errors.add("attributions", f"Attribution is required for every intervention given "
                                   f"on or before onset; missing: {', '.join(names)}.")
