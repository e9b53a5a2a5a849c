"""Safety alert messages (pure Python, no Django): subject line, body and retry schedule.

An :class:`Alert` holds only what the message may say: the study subject id (never a name,
initials or birth date: ICH E6(R3) 2.5.7 confidentiality of subjects' records; pseudonymised
data only, GDPR art. 4(5)), trial, site, event term, CTCAE v5.0 grade, dates and a link to
the record in the EDC, where the reader's access and blinding apply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "[trialdesk]"


class Kind(StrEnum):
    SAE = "sae"
    SAE_OVERDUE = "sae_overdue"
    TOXICITY_FLAG = "toxicity_flag"
    DEATH = "death"
    SAFETY_STOP = "safety_stop"


TITLES = {
    Kind.SAE: "New SAE",
    Kind.SAE_OVERDUE: "SAE report overdue",
    Kind.DEATH: "Death (grade 5 AE)",
    Kind.SAFETY_STOP: "Dose-finding safety stop",
}


@dataclass(frozen=True)
class Alert:
    """What one safety alert says (no direct identifier has a field here)."""

    kind: Kind
    trial: str
    link: str
    site: str = ""
    subject: str = ""
    event: str = ""
    grade: int | None = None
    onset: dt.date | None = None
    aware_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    death_date: dt.date | None = None
    flag: str = ""
    rule: str = ""
    status: str = ""
    arm: str = ""
    reason: str = ""


def title(alert: Alert) -> str:
    if alert.kind == Kind.TOXICITY_FLAG:
        return f"{alert.flag} flag"
    return TITLES[Kind(alert.kind)]


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def render(alert: Alert) -> tuple[str, str]:
    """``(subject line, plain-text body)`` of an alert; empty values are left out."""
    if alert.kind == Kind.SAFETY_STOP:
        subject = f"{PREFIX} {title(alert)}: {alert.trial} arm {alert.arm}"
    else:
        grade = f" grade {alert.grade}" if alert.grade else ""
        subject = (f"{PREFIX} {title(alert)}: {alert.trial} subject {alert.subject}, "
                   f"{alert.event}{grade}")
    due = f"{_when(alert.due_at)} (24 h after awareness, ICH E2A)" if alert.due_at else ""
    lines = [
        ("Alert", title(alert)),
        ("Trial", alert.trial),
        ("Site", alert.site),
        ("Arm", alert.arm),
        ("Subject (study id)", alert.subject),
        ("Event", alert.event),
        ("CTCAE grade", str(alert.grade) if alert.grade else ""),
        ("Rule", f"{alert.rule} ({alert.flag})" if alert.rule else ""),
        ("Status", alert.status),
        ("Onset", _day(alert.onset)),
        ("Site aware", _when(alert.aware_at)),
        ("Report to sponsor due", due),
        ("Date of death", _day(alert.death_date)),
        ("Reason", alert.reason),
    ]
    body = "\n".join(f"{label}: {value}" for label, value in lines if value)
    body += (f"\n\nOpen in trialdesk: {alert.link}\n\nThis message carries no direct "
             "identifier of the subject; see the record in trialdesk for details.\n")
    return subject, body


def retry_delay(attempts: int, *, base: int, cap: int) -> dt.timedelta:
    """Wait before the next delivery attempt after ``attempts`` failures: ``base`` seconds,
    doubled after each failure, at most ``cap`` seconds (exponential back-off)."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))
