"""Subject status graph (pure): which transitions are legal, and why a subject leaves.

screening -> screen_failure | enrolled -> on_treatment -> follow_up -> off_study;
enrolled, on_treatment and follow_up may also go straight to off_study. Off study carries
one of the reasons below (ICH E3 16.2.1 "discontinued subjects": completed, death, adverse
event/progression, withdrawal, lost to follow-up, investigator decision).
"""

from __future__ import annotations

SCREENING = "screening"
SCREEN_FAILURE = "screen_failure"
ENROLLED = "enrolled"
ON_TREATMENT = "on_treatment"
FOLLOW_UP = "follow_up"
OFF_STUDY = "off_study"

TRANSITIONS: dict[str, frozenset[str]] = {
    SCREENING: frozenset({SCREEN_FAILURE, ENROLLED}),
    SCREEN_FAILURE: frozenset(),
    ENROLLED: frozenset({ON_TREATMENT, OFF_STUDY}),
    ON_TREATMENT: frozenset({FOLLOW_UP, OFF_STUDY}),
    FOLLOW_UP: frozenset({OFF_STUDY}),
    OFF_STUDY: frozenset(),
}

OFF_STUDY_REASONS = (
    "completed", "progression", "death", "withdrawal_of_consent", "lost_to_follow_up",
    "investigator_decision",
)
#: Reasons that end treatment and start post-treatment follow-up.
TREATMENT_STOP_REASONS = (
    "progression", "intolerable_toxicity", "withdrawal_of_consent", "death", "end_of_study",
    "completed", "investigator_decision",
)


def check_transition(current: str, new: str, reason: str = "") -> None:
    """Raise ``ValueError`` naming the problem when ``current -> new`` is not allowed."""
    if current not in TRANSITIONS:
        raise ValueError(f"unknown status {current!r}")
    if new not in TRANSITIONS:
        raise ValueError(f"unknown status {new!r}")
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final status)"
        raise ValueError(f"a subject cannot go from {current} to {new}; allowed: {allowed}")
    if new == OFF_STUDY and reason not in OFF_STUDY_REASONS:
        raise ValueError(
            f"off study needs a reason among {', '.join(OFF_STUDY_REASONS)}; got {reason!r}"
        )
    if new == FOLLOW_UP and reason not in TREATMENT_STOP_REASONS:
        raise ValueError(
            "follow-up needs the reason treatment stopped, among "
            f"{', '.join(TREATMENT_STOP_REASONS)}; got {reason!r}"
        )
    if new == SCREEN_FAILURE and not reason.strip():
        raise ValueError("a screen failure needs a reason")
