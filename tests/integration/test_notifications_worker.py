"""Safety alerts end to end: a real Celery worker (Redis, PostgreSQL) sends them to a real SMTP
server running in this process (aiosmtpd), and we read what arrives.

Seed 000 (NCT05699811) TI rule: grade 3-4 treatment-related AE lasting >= 7 days within 28 days
after an MSC-IFNα infusion (CTCAE v5.0; "related" = possible or more, ICH E2A). SAE clock:
report to the sponsor within 24 h of awareness (ICH E2A).
"""

from __future__ import annotations

import datetime as dt

import pytest

from notifications.models import Notification, SafetyContact
from tests.conftest import wait_for
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_exposure,
    make_site,
    make_subject,
    make_user,
    record_ae,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

INFUSION = dt.date(2025, 2, 3)
NEUTROPENIA, ANEMIA = "10029366", "10002272"
AWARE = dt.datetime(2025, 2, 4, 10, 30, tzinfo=dt.UTC)
DESK = "pv@sponsor.example.org"


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


@pytest.fixture
def setting():
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    site = make_site(trial, "W1")
    subject = make_subject(trial, site, protocol_version=version, status="on_treatment",
                           arm=version.arms.get(code="MONO"), subject_number="007",
                           birth_date=dt.date(1958, 3, 21))
    make_exposure(subject, "MSC-IFNA", INFUSION)
    SafetyContact.objects.create(trial=trial, email=DESK, label="Sponsor safety desk")
    pi = make_user("smtp_pi", "investigator", (trial, site))
    pi.email = "pi@site.example.org"
    pi.save()
    return {"trial": trial, "subject": subject, "nurse": make_user("smtp_nurse", "site_staff",
                                                                   (trial, site))}


def arrived(smtp_server, kind: str, email: str = DESK):
    """The one email received for the notification of ``kind`` to ``email`` (waits)."""
    row = wait_for(lambda: Notification.objects.filter(kind=kind, recipient_email=email).first())
    messages = wait_for(lambda: smtp_server.messages_for(row.pk), timeout=30)
    return row, messages


def idle() -> bool:
    """The worker has finished all queued work (so the test database can be flushed)."""
    from edc.core.models import PendingTask

    return not PendingTask.objects.exclude(state="done").exists()


def no_identifier(message) -> None:
    text = str(message)
    assert "1958" not in text and "03-21" not in text


def test_sae_overdue_flag_and_death_alerts_arrive_by_smtp(api, setting, celery_worker,
                                                          smtp_server):
    from adverse_events.models import CtcaeTerm
    from adverse_events.tasks import raise_overdue_saes

    subject = setting["subject"]
    msc = subject.protocol_version.interventions.get(code="MSC-IFNA")
    api.force_authenticate(setting["nurse"])
    response = api.post("/api/v1/adverse-events/", {
        "subject": subject.pk, "term": CtcaeTerm.objects.get(meddra_code=NEUTROPENIA).pk,
        "onset_date": days(1).isoformat(), "resolution_date": days(7).isoformat(),
        "grade_episodes": [{"grade": 3, "start_date": days(1).isoformat(),
                            "end_date": days(7).isoformat()}],
        "attributions": [{"intervention": msc.pk, "level": "possible"}],
        "serious": True, "sae_hospitalization": True, "aware_at": AWARE.isoformat(),
    }, format="json")
    assert response.status_code == 201, response.content
    ae_id = response.json()["id"]

    row, [message] = arrived(smtp_server, "sae")
    assert message["To"] == DESK
    assert message["Subject"] == ("[trialdesk] New SAE: NCT05699811 subject 007, "
                                  "Neutrophil count decreased grade 3")
    body = message.get_content()
    assert "Subject (study id): 007" in body and "Onset: 2025-02-04" in body
    assert f"/admin/adverse_events/adverseevent/{ae_id}/change/" in body
    no_identifier(message)
    _, [to_pi] = arrived(smtp_server, "sae", "pi@site.example.org")
    assert to_pi["To"] == "pi@site.example.org"

    # The TI rule is met (grade 3 for 7 days, possibly related): the worker's evaluation
    # raises the flag and its alert.
    _, [flag_message] = arrived(smtp_server, "toxicity_flag")
    assert flag_message["Subject"].startswith("[trialdesk] TI flag: NCT05699811 subject 007")
    assert "Status: TI met by the protocol rule" in flag_message.get_content()

    raise_overdue_saes.apply_async()
    _, [overdue] = arrived(smtp_server, "sae_overdue")
    assert "Report to sponsor due: 2025-02-05 10:30 UTC" in overdue.get_content()

    record_ae(subject, ANEMIA, [(4, days(8), days(9)), (5, days(10), days(10))],
              {"MSC-IFNA": "possible"}, serious=True, sae_death=True,
              aware_at=dt.datetime(2025, 2, 13, 12, tzinfo=dt.UTC), death_date=days(10),
              outcome="fatal")
    _, [death] = arrived(smtp_server, "death")
    assert death["Subject"].startswith("[trialdesk] Death (grade 5 AE): NCT05699811 subject 007")
    assert "Date of death: 2025-02-13" in death.get_content()
    no_identifier(death)
    assert wait_for(lambda: not Notification.objects.exclude(state="sent").exists())
    wait_for(idle)


def test_with_the_mail_server_down_an_alert_waits_and_is_delivered_once(setting,
                                                                         celery_worker,
                                                                         smtp_server):
    from notifications.tasks import deliver_due_notifications

    smtp_server.stop()
    record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(3))],
              {"MSC-IFNA": "unlikely"}, serious=True, sae_hospitalization=True, aware_at=AWARE)
    rows = Notification.objects.filter(kind="sae")
    assert rows.count() == 2
    tried = wait_for(lambda: rows.filter(attempts__gte=1).count() == 2, timeout=30)
    assert tried
    assert set(rows.values_list("state", flat=True)) == {"pending"}
    assert all(row.last_error for row in rows)
    assert smtp_server.received == []

    smtp_server.start()

    def delivered():
        deliver_due_notifications.apply_async()
        return not rows.filter(state="pending").exists()

    wait_for(delivered, timeout=30, interval=1.0)
    # Two more sweeps, then a marker SAE whose deliveries are queued after them (solo pool:
    # once the marker is sent, the sweeps have run).
    deliver_due_notifications.apply_async()
    deliver_due_notifications.apply_async()
    record_ae(setting["subject"], ANEMIA, [(2, days(4), days(5))], {"MSC-IFNA": "unlikely"},
              serious=True, sae_hospitalization=True,
              aware_at=dt.datetime(2025, 2, 8, 9, tzinfo=dt.UTC))
    wait_for(lambda: Notification.objects.filter(kind="sae", state="sent").count() == 4)
    for row in rows.filter(adverse_event__term__meddra_code=NEUTROPENIA):
        assert len(smtp_server.messages_for(row.pk)) == 1
        assert row.state == "sent" and row.attempts >= 2
    wait_for(idle)
