"""Screening, eligibility, randomization and enrollment services.

* Allocation lists are pre-generated (``subjects.randomization``, permuted blocks) and stored
  concealed; a slot is taken under ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent
  enrollments never share one, and the ``OneToOne`` subject column makes a double
  allocation impossible in the database.
* Sequential designs enroll into cohorts of the protocol's size; a cohort after the first
  needs an investigator's confirmation of the dose-finding recommendation, which comes from
  ``settings.SUBJECTS_DOSE_ADVISOR`` (``adverse_events.dose_escalation.recommendation``: it
  reads adverse events, an app above this one); the trial row is locked while a cohort is
  counted and filled, so two sites never overfill it.
* Concurrency (issue 19): whatever serialises enrollments is taken last. Validation,
  eligibility, the slot (``SKIP LOCKED``) and the schedule's plan come first; the audited writes
  (visits in one INSERT, slot, subject) and the site's numbering lock come back to back at the
  end, since every audit table's hash chain serialises its writers until commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from edc.core.audit import change_reason, subject_transaction
from edc.core.exceptions import Conflict
from edc.core.prepared import INTEGER_PLACEHOLDER, PARAMETER, PreparedQuery
from trials import dose_finding
from trials.models import Arm, DoseLevel, EligibilityCriterion, ProtocolVersion, Trial

from . import lifecycle, randomization, signals
from .age import completed_years
from .models import DoseConfirmation, EligibilityAnswer, RandomizationSlot, Site, Subject


class EnrollmentRefused(Conflict):
    """Enrollment is impossible in the current state (API: 409), with each reason."""

    code = "enrollment_refused"


def age_at(subject: Subject, on: dt.date) -> int | None:
    if subject.birth_date is None:
        return subject.age_at_consent
    return completed_years(subject.birth_date, on)


#: A subject's eligibility answers (unordered) and a protocol version's criteria (ordered within
#: the version: the models' orderings join for nothing here), compiled once.
_ANSWERS = PreparedQuery(
    lambda: EligibilityAnswer.objects.filter(subject_id=INTEGER_PLACEHOLDER).order_by(),
    (INTEGER_PLACEHOLDER,))
_CRITERIA = PreparedQuery(
    lambda: EligibilityCriterion.objects.filter(protocol_version_id=INTEGER_PLACEHOLDER)
    .order_by("kind", "number"), (INTEGER_PLACEHOLDER,))


def eligibility_problems(subject: Subject) -> list[str]:
    """Unanswered or failed criteria, and machine-checked age and sex at consent."""
    version = subject.protocol_version
    answers = {a.criterion_id: a.met for a in _ANSWERS.run(subject.pk)}
    problems = []
    for criterion in _CRITERIA.run(version.pk):
        label = f"{criterion.kind} {criterion.number}"
        if criterion.pk not in answers:
            problems.append(f"{label} not answered")
        elif criterion.kind == "inclusion" and not answers[criterion.pk]:
            problems.append(f"{label} not met: {criterion.text[:100]}")
        elif criterion.kind == "exclusion" and answers[criterion.pk]:
            problems.append(f"{label} present: {criterion.text[:100]}")
    age = age_at(subject, subject.consent_date)
    if age is None:
        problems.append("age at consent unknown (birth date or age required)")
    else:
        if version.min_age_years is not None and age < version.min_age_years:
            problems.append(f"age {age} at consent is below the minimum {version.min_age_years}")
        if version.max_age_years is not None and age > version.max_age_years:
            problems.append(f"age {age} at consent is above the maximum {version.max_age_years}")
    wanted = {"female": "F", "male": "M"}.get(version.sex)
    if wanted and subject.sex != wanted:
        problems.append(f"sex {subject.sex} not eligible (protocol: {version.sex} only)")
    return problems


# ---------------------------------------------------------------- allocation lists

def list_seed(trial: Trial) -> str:
    """Seed of a trial's lists: a secret from the environment and the trial id (concealment)."""
    secret = settings.RANDOMIZATION_SECRET
    return hashlib.sha256(f"{secret}:{trial.registry_id}".encode()).hexdigest()


def _by_site(trial: Trial) -> bool:
    rand = trial.current_protocol().design.randomization
    return bool(rand and "site" in (rand.stratification or ()))


def _stratum_of(trial: Trial, site: Site) -> str:
    return site.code if _by_site(trial) else ""


def strata_of(trial: Trial) -> list[str]:
    """The strata a trial's lists are kept in (one per site when stratified by site)."""
    return [site.code for site in trial.sites.all()] if _by_site(trial) else [""]


def design_of(trial: Trial):
    """The current protocol version, the allocation ratio and the block sizes of the lists
    (blocks of 2x and 4x the ratio sum where the protocol states none)."""
    version = trial.current_version()
    rand = version.protocol().design.randomization
    ratio = dict(rand.ratio)
    total = randomization.ratio_sum(ratio)
    block_sizes = tuple(rand.block_sizes or (total * 2, total * 4))
    return version, ratio, block_sizes


@transaction.atomic
def ensure_allocation_list(trial: Trial, stratum: str = "") -> int:
    """Generate the stratum's list once (idempotent); returns the number of slots created.

    Where the protocol states no block size, blocks of 2x and 4x the ratio sum are drawn at
    random (varied blocks keep the next allocation unpredictable: ICH E9 2.3.2).
    """
    Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)
    if RandomizationSlot.objects.filter(trial=trial, stratum=stratum).exists():
        return 0
    version, ratio, block_sizes = design_of(trial)
    target = trial.target_enrollment or 100
    n_blocks = -(-2 * target // min(block_sizes))
    slots = randomization.generate_list(ratio, block_sizes, n_blocks, list_seed(trial), stratum)
    arms = {arm.code: arm for arm in version.arms.all()}
    with change_reason("allocation list generated"):
        RandomizationSlot.objects.bulk_create(
            RandomizationSlot(trial=trial, stratum=stratum, sequence=s.sequence,
                              block_number=s.block_number, block_size=s.block_size,
                              arm=arms[s.arm])
            for s in slots
        )
    return len(slots)


#: The first free slot of a trial's stratum with its arm, locked ``SKIP LOCKED`` (of the slot
#: row only): compiled once (``edc.core.prepared``), run in the enrollment's transaction.
_FREE_SLOT = PreparedQuery(
    lambda: RandomizationSlot.objects.select_for_update(skip_locked=True, of=("self",))
    .select_related("arm").filter(trial_id=INTEGER_PLACEHOLDER, stratum=PARAMETER,
                                  subject__isnull=True).order_by("sequence")[:1],
    (INTEGER_PLACEHOLDER, PARAMETER))


def _free_slot(subject: Subject) -> RandomizationSlot:
    """The first free slot of the subject's stratum, locked (``SKIP LOCKED``: a slot another
    enrollment holds is passed over, never waited for); written by ``_take`` at the end. The
    stratum's list is generated when none is found and the stratum has no list yet."""
    stratum = _stratum_of(subject.trial, subject.site)
    slot = next(iter(_FREE_SLOT.run(subject.trial_id, stratum)), None)
    if slot is None and not RandomizationSlot.objects.filter(
            trial=subject.trial, stratum=stratum).exists():
        with transaction.atomic():
            ensure_allocation_list(subject.trial, stratum)
        slot = next(iter(_FREE_SLOT.run(subject.trial_id, stratum)), None)
    if slot is None:
        where = f" of stratum {stratum}" if stratum else ""
        raise EnrollmentRefused([f"the allocation list{where} is exhausted; the unblinded "
                                 "statistician must extend it"])
    return slot


def _take(slot: RandomizationSlot, subject: Subject) -> None:
    with change_reason("randomization: slot allocated"):
        slot.subject = subject
        slot.allocated_at = timezone.now()
        slot.save(update_fields=["subject", "allocated_at", "updated_at"])


# ---------------------------------------------------------------- cohorts

def _dose_for(subject: Subject, arm: Arm, protocol) -> tuple[DoseLevel | None, str, int | None]:
    """Dose level, frequency level and cohort number for a dose-finding design.

    A dose-finding arm fills its current cohort (its size plus one replacement per subject
    who is not evaluable); the next cohort opens only with an investigator's confirmation;
    during a safety stop nobody is enrolled. An arm whose dose comes from another arm's result
    (seed 000 Arm 2: "tolerable dose determined in Arm 1") waits for that result's confirmation.
    """
    df = protocol.dose_finding
    version = subject.protocol_version
    if df is None:
        return None, "", None
    if arm.code not in df.arms:
        result = confirmed_result(subject.trial, df.arms)
        if result is None:
            raise EnrollmentRefused([
                f"arm {arm.code} takes the dose determined in arm {', '.join(df.arms)}; an "
                "investigator has not confirmed that result yet"])
        return *_checked(result, df), None
    state = import_string(settings.SUBJECTS_DOSE_ADVISOR)(subject.trial)
    if state["action"] == "safety_stop":
        raise EnrollmentRefused([state["explanation"]])
    cohorts = state["cohorts"]
    if cohorts and cohorts[-1]["n_subjects"] < cohorts[-1]["capacity"]:
        current = cohorts[-1]
        level = version.dose_levels.get(code=current["dose_level"])
        return level, current["frequency"], current["cohort"]
    cohort = cohorts[-1]["cohort"] + 1 if cohorts else 1
    if cohort == 1:
        levels = version.dose_levels.order_by("order")
        level = levels.get(code=df.crm.start_level) if df.crm else levels.first()
        frequency = df.frequency_levels[0].code if df.frequency_levels else ""
        return level, frequency, cohort
    confirmation = DoseConfirmation.objects.filter(
        trial=subject.trial, arm=arm, cohort=cohort, retired_at__isnull=True,
        kind=DoseConfirmation.Kind.NEXT_COHORT).first()
    if confirmation is None:
        raise EnrollmentRefused([
            f"cohort {cohort - 1} is complete ({cohorts[-1]['n_subjects']} subjects); cohort "
            f"{cohort} opens when an investigator confirms its dose "
            f"({state['explanation']})"])
    return *_checked(confirmation, df), cohort


def confirmed_result(trial: Trial, arm_codes) -> DoseConfirmation | None:
    """The latest confirmed result of the dose finding of ``arm_codes``, or None."""
    return (DoseConfirmation.objects.filter(
        trial=trial, arm__code__in=list(arm_codes), kind=DoseConfirmation.Kind.RESULT,
        retired_at__isnull=True).select_related("dose_level").order_by("-created_at").first())


def _checked(confirmation: DoseConfirmation, design) -> tuple[DoseLevel, str]:
    """The confirmed dose and frequency level, refused if the subject's protocol version does
    not define that frequency level (a confirmation recorded under another version)."""
    problem = dose_finding.frequency_level_problem(design, confirmation.frequency_level)
    if problem:
        raise EnrollmentRefused([f"the confirmed dose of cohort {confirmation.cohort} does not "
                                 f"fit this protocol version's frequency levels: {problem}; an "
                                 "investigator must confirm the dose again"])
    return confirmation.dose_level, confirmation.frequency_level


def _open_arm(subject: Subject, arm_code: str | None) -> Arm:
    arms = subject.protocol_version.arms.order_by("sequence", "code")
    if arm_code:
        arm = arms.filter(code=arm_code).first()
        if arm is None:
            raise ValidationError({"arm": f"no arm {arm_code!r} in this protocol version"})
        return arm
    return arms.first()


# ---------------------------------------------------------------- enrollment

def locked_for_enrollment(subjects: QuerySet) -> QuerySet:
    """``subjects`` read as :func:`enroll` needs its subject: every column, with its trial,
    site and protocol version (not the version's document and texts: ``protocol()`` does not
    need them), the subject's row locked until the transaction ends.

    Only the subject row is locked: a bare FOR UPDATE over the select_related join would also
    lock the trial, site and protocol version rows FOR UPDATE, and the shared trial row then
    conflicts with every FK check (FOR KEY SHARE) of a concurrent insert referencing the
    trial -> lock cycles. NO KEY UPDATE: rows referencing the subject may still be inserted.
    """
    return (subjects.defer(None).select_related(None)
            .select_related("trial", "site", "protocol_version")
            .defer(*(f"protocol_version__{name}" for name in ProtocolVersion.LARGE_FIELDS))
            .select_for_update(no_key=True, of=("self",)))


def enroll(subject: Subject, *, enrolled_on: dt.date, user=None, day0: dt.date | None = None,
           arm_code: str | None = None, locked: bool = False) -> Subject:
    """Enroll an eligible subject: arm (randomized or open cohort), dose level, day 0, id.

    ``locked``: ``subject`` was read by :func:`locked_for_enrollment` in the caller's
    transaction (the API's enroll: one read of the subject, scoped and locked), which the
    enrollment joins (no savepoint: a refusal rolls it back); otherwise the subject is read
    so here, in a transaction of its own (a savepoint inside a caller's).
    """
    with subject_transaction(locked):
        if not locked:
            subject = locked_for_enrollment(Subject.objects).get(pk=subject.pk)
        return _enroll(subject, enrolled_on, user, day0, arm_code)


def _enroll(subject: Subject, enrolled_on: dt.date, user, day0: dt.date | None,
            arm_code: str | None) -> Subject:
    if subject.status != lifecycle.SCREENING:
        raise EnrollmentRefused([f"the subject is {subject.status}, not in screening"])
    today = timezone.localdate()
    if enrolled_on > today:
        raise ValidationError({"enrolled_on": f"{enrolled_on.isoformat()} is in the future."})
    if subject.consent_date > enrolled_on:
        raise ValidationError({"consent_date": (
            f"consent ({subject.consent_date.isoformat()}) is after enrollment "
            f"({enrolled_on.isoformat()}).")})
    day0 = day0 or enrolled_on
    if day0 < enrolled_on:
        raise ValidationError({"day0": "day 0 cannot be before enrollment"})
    problems = eligibility_problems(subject)
    if problems:
        raise EnrollmentRefused(problems)
    trial = subject.trial
    protocol = subject.protocol_version.protocol()
    slot = None
    if trial.is_randomized:
        if arm_code:
            raise ValidationError({"arm": "the arm of a randomized trial is allocated, not "
                                          "chosen"})
        slot = _free_slot(subject)
        arm, dose_level, frequency, cohort = slot.arm, None, "", None
    else:
        arm = _open_arm(subject, arm_code)
        if protocol.dose_finding is not None:
            # cohorts fill one enrollment at a time, across every site of the trial; NO KEY
            # UPDATE does not conflict with the FK checks of inserts referencing the trial
            Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)
        dose_level, frequency, cohort = _dose_for(subject, arm, protocol)
    subject.arm = arm
    subject.dose_level = dose_level
    subject.frequency_level = frequency
    subject.cohort = cohort
    subject.day0 = day0
    subject.enrolled_on = enrolled_on
    subject.status = lifecycle.ENROLLED
    subject.status_date = enrolled_on
    subject.status_reason = "enrolled"
    # The schedule is planned from the unsaved state first, then visits (one INSERT), slot,
    # number and subject are written back to back, holding their row locks briefly.
    signals.schedule_changed.send(sender=Subject, subject=subject, reason="enrollment",
                                  locked=True)
    if slot is not None:
        _take(slot, subject)
    # numbering counts the site's numbered subjects: serialised per site, taken last; NO KEY
    # UPDATE conflicts with itself but not with the FK checks of inserts referencing the site
    site = Site.objects.select_for_update(no_key=True).get(pk=subject.site_id)
    number = Subject.objects.filter(site=site).exclude(subject_number="").count() + 1
    with change_reason("enrollment", user):
        subject.subject_number = f"{site.code}{number:03d}"
        subject.save()
    return subject


@transaction.atomic
def screen_fail(subject: Subject, *, on: dt.date, reason: str, user=None) -> Subject:
    """Record a screen failure with its reason (the subject stays, never deleted)."""
    from .services import change_status

    return change_status(subject, lifecycle.SCREEN_FAILURE, on, reason, user)
