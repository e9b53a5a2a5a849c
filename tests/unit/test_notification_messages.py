"""Safety alert messages (pure rules, no database): what they say and what they never say.

A message carries the study subject id, trial, site, event term, CTCAE grade, dates and a
link; it has no field for a name, initials or birth date (ICH E6(R3) 2.5.7 / GDPR art. 4(1):
direct identifiers stay at the site), so none can leak into an email.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from notifications import messages
from notifications.messages import Alert, Kind

LINK = "https://edc.example.org/admin/adverse_events/adverseevent/7/change/"


def sae(**changes) -> Alert:
    values = {
        "kind": Kind.SAE, "trial": "NCT05699811", "site": "W1", "subject": "000-W1-003",
        "event": "Febrile neutropenia", "grade": 3, "onset": dt.date(2025, 2, 4),
        "aware_at": dt.datetime(2025, 2, 4, 10, 30, tzinfo=dt.UTC), "link": LINK,
    }
    values.update(changes)
    return Alert(**values)


def test_an_sae_message_names_subject_id_trial_event_grade_dates_and_link():
    subject, body = messages.render(sae())
    assert subject == ("[trialdesk] New SAE: NCT05699811 subject 000-W1-003, "
                       "Febrile neutropenia grade 3")
    assert "Trial: NCT05699811" in body
    assert "Site: W1" in body
    assert "Subject (study id): 000-W1-003" in body
    assert "Event: Febrile neutropenia" in body
    assert "CTCAE grade: 3" in body
    assert "Onset: 2025-02-04" in body
    assert "Site aware: 2025-02-04 10:30 UTC" in body
    assert LINK in body


def test_an_alert_has_no_field_for_a_direct_identifier():
    names = {f.name for f in dataclasses.fields(Alert)}
    for forbidden in ("name", "initials", "birth_date", "date_of_birth", "age", "sex",
                      "screening_number"):
        assert forbidden not in names


@pytest.mark.parametrize(("kind", "title"), [
    (Kind.SAE, "New SAE"),
    (Kind.SAE_OVERDUE, "SAE report overdue"),
    (Kind.TOXICITY_FLAG, "DLT flag"),
    (Kind.DEATH, "Death (grade 5 AE)"),
])
def test_each_kind_has_its_own_title(kind, title):
    subject, body = messages.render(sae(kind=kind, flag="DLT", rule="DLT1",
                                        due_at=dt.datetime(2025, 2, 5, 10, 30, tzinfo=dt.UTC),
                                        death_date=dt.date(2025, 2, 9)))
    assert subject.startswith(f"[trialdesk] {title}: NCT05699811")


def test_an_overdue_sae_says_when_the_report_was_due():
    _, body = messages.render(sae(kind=Kind.SAE_OVERDUE,
                                  due_at=dt.datetime(2025, 2, 5, 10, 30, tzinfo=dt.UTC)))
    assert "Report to sponsor due: 2025-02-05 10:30 UTC (24 h after awareness, ICH E2A)" in body


def test_a_flag_message_names_the_rule_and_whether_it_was_overridden():
    _, body = messages.render(sae(kind=Kind.TOXICITY_FLAG, flag="TI", rule="TI",
                                  status="overridden by an investigator: TI"))
    assert "Rule: TI (TI)" in body
    assert "Status: overridden by an investigator: TI" in body


def test_a_death_message_gives_the_death_date():
    _, body = messages.render(sae(kind=Kind.DEATH, grade=5, death_date=dt.date(2025, 2, 9)))
    assert "Date of death: 2025-02-09" in body


def test_a_safety_stop_names_the_arm_and_the_reason_without_a_subject():
    alert = Alert(kind=Kind.SAFETY_STOP, trial="NCT05699811", arm="MONO",
                  reason="safety stop: related death, review required",
                  link="https://edc.example.org/admin/trials/trial/1/dashboard/")
    subject, body = messages.render(alert)
    assert subject == "[trialdesk] Dose-finding safety stop: NCT05699811 arm MONO"
    assert "Arm: MONO" in body
    assert "Reason: safety stop: related death, review required" in body
    assert "Subject" not in body


def test_empty_values_are_left_out():
    _, body = messages.render(sae(onset=None, aware_at=None))
    assert "Onset" not in body and "aware" not in body


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 60), (2, 120), (3, 240), (7, 3600),
                                                   (30, 3600)])
def test_retry_delay_doubles_up_to_the_cap(attempts, seconds):
    assert messages.retry_delay(attempts, base=60, cap=3600) == dt.timedelta(seconds=seconds)
