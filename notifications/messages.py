"""Safety alert messages (pure Python, no Django): subject line, body and retry schedule.

An :class:`Alert` holds only what the message may say: the study subject id (never a name,
initials or birth date: ICH E6(R3) 2.5.7 confidentiality of subjects' records; pseudonymised
data only, GDPR art. 4(5)), trial, site, event term, CTCAE v5.0 grade, dates and a link to
the record in the EDC, where the reader's access and blinding apply.

Labels are English msgids marked with :func:`gettext_noop` (extracted by ``makemessages``);
``render`` takes the translation function of the language the message is written in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "[trialdesk]"


def gettext_noop(text: str) -> str:
    """Marks a label for message extraction; translated when a message is rendered."""
    return text


class Kind(StrEnum):
    SAE = "sae"
    SAE_OVERDUE = "sae_overdue"
    TOXICITY_FLAG = "toxicity_flag"
    DEATH = "death"
    SAFETY_STOP = "safety_stop"
    EPRO_DUE = "epro_due"


TITLES = {
    Kind.SAE: gettext_noop("New SAE"),
    Kind.SAE_OVERDUE: gettext_noop("SAE report overdue"),
    Kind.DEATH: gettext_noop("Death (grade 5 AE)"),
    Kind.SAFETY_STOP: gettext_noop("Dose-finding safety stop"),
    Kind.EPRO_DUE: gettext_noop("ePRO questionnaire not completed"),
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


#: Words of the subject line and body (module constants: extraction does not read f-strings).
ARM = gettext_noop("arm")
GRADE = gettext_noop("grade")
SUBJECT = gettext_noop("subject")
E2A_CLOCK = gettext_noop("24 h after awareness, ICH E2A")
OPEN_IN = gettext_noop("Open in trialdesk")
NO_IDENTIFIER = gettext_noop("This message carries no direct identifier of the subject; see the "
                             "record in trialdesk for details.")


def _same(text: str) -> str:
    return text


def title(alert: Alert, translate=_same) -> str:
    if alert.kind == Kind.TOXICITY_FLAG:
        return translate(gettext_noop("%(flag)s flag")) % {"flag": alert.flag}
    return translate(TITLES[Kind(alert.kind)])


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def render(alert: Alert, translate=_same) -> tuple[str, str]:
    """``(subject line, plain-text body)`` of an alert, its labels passed through
    ``translate`` (values as recorded); empty values are left out."""
    t = translate
    head = title(alert, t)
    if alert.kind == Kind.SAFETY_STOP:
        subject = f"{PREFIX} {head}: {alert.trial} {t(ARM)} {alert.arm}"
    else:
        grade = f" {t(GRADE)} {alert.grade}" if alert.grade else ""
        subject = (f"{PREFIX} {head}: {alert.trial} {t(SUBJECT)} "
                   f"{alert.subject}, {alert.event}{grade}")
    due = (f"{_when(alert.due_at)} ({t(E2A_CLOCK)})"
           if alert.due_at else "")
    lines = [
        (gettext_noop("Alert"), head),
        (gettext_noop("Trial"), alert.trial),
        (gettext_noop("Site"), alert.site),
        (gettext_noop("Arm"), alert.arm),
        (gettext_noop("Subject (study id)"), alert.subject),
        (gettext_noop("Event"), alert.event),
        (gettext_noop("CTCAE grade"), str(alert.grade) if alert.grade else ""),
        (gettext_noop("Rule"), f"{alert.rule} ({alert.flag})" if alert.rule else ""),
        (gettext_noop("Status"), alert.status),
        (gettext_noop("Onset"), _day(alert.onset)),
        (gettext_noop("Site aware"), _when(alert.aware_at)),
        (gettext_noop("Report to sponsor due"), due),
        (gettext_noop("Date of death"), _day(alert.death_date)),
        (gettext_noop("Reason"), alert.reason),
    ]
    body = "\n".join(f"{t(label)}: {value}" for label, value in lines if value)
    body += f"\n\n{t(OPEN_IN)}: {alert.link}\n\n{t(NO_IDENTIFIER)}\n"
    return subject, body


def retry_delay(attempts: int, *, base: int, cap: int) -> dt.timedelta:
    """Wait before the next delivery attempt after ``attempts`` failures: ``base`` seconds,
    doubled after each failure, at most ``cap`` seconds (exponential back-off)."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))
