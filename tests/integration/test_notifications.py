"""Safety alerts recorded by the adverse-event services (PostgreSQL, no worker): who is told,
once per event, with no direct identifier; delivery over a real in-process SMTP server
(aiosmtpd) with the exactly-once claim; the admin and the API.

Seed 000 (NCT05699811) TI rule: grade 3-4 treatment-related AE lasting >= 7 days within 28 days
after an MSC-IFNα infusion (CTCAE v5.0; "related" = possible or more, ICH E2A). SAE clock:
report to the sponsor within 24 h of awareness (ICH E2A).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from adverse_events import services as ae_services
from adverse_events.models import ToxicityFlag
from edc.core.audit import change_reason, history
from edc.core.models import PendingTask
from notifications import services
from notifications.models import Notification, SafetyContact
from subjects.models import Membership
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_arm,
    make_exposure,
    make_site,
    make_subject,
    make_trial,
    make_user,
    record_ae,
)

pytestmark = pytest.mark.django_db

INFUSION = dt.date(2025, 2, 3)
NEUTROPENIA, ANEMIA = "10029366", "10002272"
AWARE = dt.datetime(2025, 2, 4, 10, 30, tzinfo=dt.UTC)


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


def investigator(username, *memberships, email=True):
    user = make_user(username, "investigator", *memberships)
    if email:
        user.email = f"{username}@site.example.org"
        user.save()
    return user


@pytest.fixture
def setting():
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    site, other_site = make_site(trial, "W1"), make_site(trial, "W2")
    subject = make_subject(trial, site, protocol_version=version, status="on_treatment",
                           arm=version.arms.get(code="MONO"), subject_number="003",
                           birth_date=dt.date(1961, 7, 14), age_at_consent=63)
    make_exposure(subject, "MSC-IFNA", INFUSION)
    SafetyContact.objects.create(trial=trial, email="pv@sponsor.example.org",
                                 label="Sponsor safety desk")
    return {
        "trial": trial, "site": site, "subject": subject,
        "pi": investigator("pi_w1", (trial, site)),
        "lead": investigator("lead_all", (trial, None)),
        "other_pi": investigator("pi_w2", (trial, other_site)),
        "no_email": investigator("pi_noemail", (trial, site), email=False),
        "nurse": make_user("nurse_w1", "site_staff", (trial, site)),
    }


def sae(setting, **values):
    values = {"serious": True, "sae_hospitalization": True, "aware_at": AWARE, **values}
    return record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(3))],
                     {"MSC-IFNA": "unlikely"}, **values)


def emails(rows) -> list[str]:
    return sorted(n.recipient_email for n in rows)


# ------------------------------------------------------------------ who is told, and once


def test_a_new_sae_tells_the_sites_investigators_and_the_sponsor_contacts(setting):
    ae = sae(setting)
    rows = Notification.objects.filter(adverse_event=ae, kind="sae")
    assert emails(rows) == ["lead_all@site.example.org", "pi_w1@site.example.org",
                            "pv@sponsor.example.org"]
    assert {n.state for n in rows} == {"pending"}
    assert {n.recipient_kind for n in rows} == {"investigator", "safety_contact"}
    row = rows.get(recipient_email="pi_w1@site.example.org")
    assert row.recipient_user == setting["pi"]
    assert (row.subject_study_id, row.event_term, row.grade, row.event_date) == (
        "003", "Neutrophil count decreased", 3, days(1))
    assert row.link.endswith(f"/admin/adverse_events/adverseevent/{ae.pk}/change/")
    assert row.message_subject == ("[trialdesk] New SAE: NCT05699811 subject 003, "
                                   "Neutrophil count decreased grade 3")
    queued = PendingTask.objects.filter(task_name="notifications.tasks.deliver_notification")
    assert sorted(t.args[0] for t in queued) == sorted(n.pk for n in rows)


def test_the_message_carries_no_direct_identifier(setting):
    sae(setting, verbatim_term="")
    subject = setting["subject"]
    for row in Notification.objects.all():
        text = row.message_subject + row.body
        for identifier in ("1961", "07-14", "14.07", "63", subject.screening_number):
            assert identifier not in text
        assert "Subject (study id): 003" in row.body


def test_a_non_serious_ae_tells_nobody_and_a_saved_sae_is_not_told_twice(setting):
    ae = record_ae(setting["subject"], NEUTROPENIA, [(2, days(1), days(3))],
                   {"MSC-IFNA": "unlikely"})
    assert not Notification.objects.exists()
    with change_reason("became serious: hospitalised"):
        ae = ae_services.save_adverse_event(
            setting["subject"], {"serious": True, "sae_hospitalization": True,
                                 "aware_at": AWARE}, None, None, instance=ae)
    assert Notification.objects.filter(kind="sae", adverse_event=ae).count() == 3
    with change_reason("outcome known"):
        ae_services.save_adverse_event(setting["subject"], {"outcome": "recovered"}, None, None,
                                       instance=ae)
    assert Notification.objects.filter(kind="sae", adverse_event=ae).count() == 3


def test_retired_contacts_and_memberships_and_inactive_users_are_not_told(setting):
    SafetyContact.objects.get().retire("desk moved")
    Membership.objects.get(user=setting["lead"]).retire("left the trial")
    User.objects.filter(pk=setting["pi"].pk).update(is_active=False)
    ae = sae(setting)
    rows = Notification.objects.filter(adverse_event=ae)
    assert rows.count() == 1
    row = rows.get()
    assert (row.state, row.recipient_kind, row.recipient_email) == ("failed", "none", "")
    assert row.last_error.startswith("no recipient")


def test_one_notification_per_event_and_recipient_in_the_database(setting):
    ae = sae(setting)
    row = Notification.objects.filter(adverse_event=ae).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            kind="sae", event_key=row.event_key, trial=row.trial, link=row.link,
            recipient_kind="investigator", recipient_email=row.recipient_email,
            message_subject="again", body="again")


def test_a_notification_is_never_deleted_and_changes_are_audited(setting):
    row = sae(setting) and Notification.objects.first()
    with pytest.raises(PermissionError):
        row.delete()
    assert history(row)[0]["event"] == "insert"


def test_a_grade_5_ae_tells_of_a_death(setting):
    ae = record_ae(setting["subject"], ANEMIA, [(4, days(1), days(2)), (5, days(3), days(3))],
                   {"MSC-IFNA": "possible"}, serious=True, sae_death=True, aware_at=AWARE,
                   death_date=days(3), outcome="fatal")
    deaths = Notification.objects.filter(kind="death", adverse_event=ae)
    assert deaths.count() == 3
    row = deaths.first()
    assert row.grade == 5
    assert "Date of death: 2025-02-06" in row.body
    assert row.message_subject.startswith("[trialdesk] Death (grade 5 AE): NCT05699811")


def test_an_overdue_sae_tells_once(setting):
    ae = sae(setting)
    assert ae_services.raise_overdue_saes() == 1
    assert ae_services.raise_overdue_saes() == 0
    rows = Notification.objects.filter(kind="sae_overdue", adverse_event=ae)
    assert rows.count() == 3
    assert "Report to sponsor due: 2025-02-05 10:30 UTC" in rows.first().body


def test_an_effective_flag_tells_once_and_an_override_tells_again(setting):
    subject = setting["subject"]
    ae = record_ae(subject, NEUTROPENIA, [(3, days(1), days(7))], {"MSC-IFNA": "possible"})
    ae_services.evaluate_toxicity(subject.pk)
    ae_services.evaluate_toxicity(subject.pk)
    flag = ToxicityFlag.objects.get(subject=subject, rule_code="TI", adverse_event=ae)
    assert flag.computed
    rows = Notification.objects.filter(kind="toxicity_flag", adverse_event=ae)
    assert rows.count() == 3
    assert "Status: TI met by the protocol rule" in rows.first().body
    assert rows.first().link.endswith(f"/admin/adverse_events/toxicityflag/{flag.pk}/change/")

    ae_services.override_flag(flag, False, "grade 3 was a lab error", setting["pi"])
    overrides = Notification.objects.filter(kind="toxicity_flag", adverse_event=ae,
                                            body__contains="cleared by an investigator")
    assert overrides.count() == 3
    assert "lab error" not in overrides.first().body


def test_a_flag_not_met_tells_nobody(setting):
    subject = setting["subject"]
    record_ae(subject, NEUTROPENIA, [(3, days(1), days(3))], {"MSC-IFNA": "possible"})
    ae_services.evaluate_toxicity(subject.pk)
    assert ToxicityFlag.objects.filter(subject=subject).exists()
    assert not Notification.objects.filter(kind="toxicity_flag").exists()


def test_a_safety_stop_tells_every_investigator_of_the_trial_once(setting):
    trial = setting["trial"]
    arm = trial.current_version().arms.get(code="MONO")
    reason = "safety stop: related death, review required (MSC-IFNA)"
    rows = services.notify_safety_stop(trial, arm, reason)
    services.notify_safety_stop(trial, arm, reason)
    assert emails(Notification.objects.filter(kind="safety_stop")) == [
        "lead_all@site.example.org", "pi_w1@site.example.org", "pi_w2@site.example.org",
        "pv@sponsor.example.org"]
    row = rows[0]
    assert row.site is None and row.subject is None and row.arm == arm
    assert row.message_subject == "[trialdesk] Dose-finding safety stop: NCT05699811 arm MONO"
    assert f"Reason: {reason}" in row.body
    assert row.link.endswith(f"/admin/trials/trial/{trial.pk}/dashboard/")


def test_a_safety_stop_in_a_blinded_trial_names_no_product_and_no_arm(api):
    from trials.models import Intervention

    trial = make_trial(masking="double", registry_id="BLIND0001")
    version = trial.current_version()
    Intervention.objects.create(protocol_version=version, code="CART19", agent="Tisa-cel",
                                intervention_type="biological")
    Intervention.objects.create(protocol_version=version, code="PBO", agent="Saline",
                                intervention_type="placebo", placebo_for="CART19")
    arm = make_arm(trial, "ACTIVE", "CART19 2e6/kg", blinded_label="Arm X")
    investigator("blind_pi", (trial, None))
    rows = services.notify_safety_stop(trial, arm, "related death after CART19 (Tisa-cel)")
    text = rows[0].message_subject + rows[0].body
    assert "CART19" not in text and "Tisa-cel" not in text and "ACTIVE" not in text
    assert "Arm: Arm X" in text and "study product (blinded)" in text
    api.force_authenticate(make_user("blind_monitor", "monitor", (trial, None)))
    listed = api.get("/api/v1/notifications/").content.decode()
    assert "Arm X" in listed
    assert "CART19" not in listed and "Tisa-cel" not in listed and "ACTIVE" not in listed


# -------------------------------------------------------------------- delivery over SMTP


@pytest.fixture
def smtp_settings(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.EMAIL_TIMEOUT = 3
    return settings


def test_delivery_sends_once_and_marks_sent_with_the_audit_reason(setting, smtp_settings,
                                                                   smtp_server):
    sae(setting)
    row = Notification.objects.get(recipient_email="pv@sponsor.example.org")
    assert services.deliver(row.pk) == "sent"
    assert services.deliver(row.pk) == "sent"
    received = smtp_server.messages_for(row.pk)
    assert len(received) == 1
    assert received[0]["To"] == "pv@sponsor.example.org"
    assert received[0]["Subject"] == row.message_subject
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, "")
    assert row.sent_at is not None
    assert history(row)[-1]["reason"] == "safety alert sent"


def test_with_the_server_down_the_alert_waits_then_goes_once(setting, smtp_settings,
                                                             smtp_server):
    sae(setting)
    row = Notification.objects.get(recipient_email="pv@sponsor.example.org")
    smtp_server.stop()
    assert services.deliver(row.pk) == "pending"
    row.refresh_from_db()
    assert row.attempts == 1 and row.last_error
    assert services.deliver_due() == 0  # not yet due: back-off
    smtp_server.start()
    later = row.next_attempt_at + dt.timedelta(seconds=1)
    assert services.deliver_due(now=later) == 3  # the three recipients of the SAE
    assert services.deliver_due(now=later) == 0
    assert len(smtp_server.messages_for(row.pk)) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("sent", 2)


# ------------------------------------------------------------------------- API and admin


def test_the_api_lists_notifications_in_the_users_scope_read_only(api, setting):
    ae = sae(setting)
    api.force_authenticate(setting["nurse"])
    response = api.get("/api/v1/notifications/", {"adverse_event": ae.pk})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    row = results[0]
    assert {"recipient_email", "state", "attempts", "queued_at", "sent_at", "link",
            "subject_study_id", "event_term", "grade"} <= set(row)
    assert api.get(f"/api/v1/notifications/{row['id']}/").status_code == 200
    assert api.post("/api/v1/notifications/", {}).status_code == 405
    assert api.delete(f"/api/v1/notifications/{row['id']}/").status_code == 405

    api.force_authenticate(setting["other_pi"])  # site W2 only: not W1's SAE
    assert api.get("/api/v1/notifications/").json()["results"] == []
    assert api.get(f"/api/v1/notifications/{row['id']}/").status_code == 404


def test_a_trial_wide_alert_is_seen_by_all_site_members_only(api, setting):
    trial = setting["trial"]
    services.notify_safety_stop(trial, trial.current_version().arms.get(code="MONO"),
                                "safety stop: related death, review required")
    api.force_authenticate(setting["lead"])
    assert len(api.get("/api/v1/notifications/").json()["results"]) == 4
    api.force_authenticate(setting["pi"])
    assert api.get("/api/v1/notifications/").json()["results"] == []


def test_the_admin_shows_notifications_read_only_and_contacts_to_data_managers(
        client, setting):
    sae(setting)
    row = Notification.objects.first()
    client.force_login(setting["pi"])
    assert client.get("/admin/notifications/notification/").status_code == 200
    page = client.get(f"/admin/notifications/notification/{row.pk}/change/")
    assert page.status_code == 200 and b"Neutrophil count decreased" in page.content
    assert b'name="_save"' not in page.content
    assert client.get("/admin/notifications/safetycontact/add/").status_code == 403

    manager = make_user("dm", "data_manager", (setting["trial"], None))
    client.force_login(manager)
    response = client.post("/admin/notifications/safetycontact/add/", {
        "trial": setting["trial"].pk, "email": "safety2@sponsor.example.org",
        "label": "Sponsor medical monitor"})
    assert response.status_code == 302, response.content
    contact = SafetyContact.objects.get(email="safety2@sponsor.example.org")
    response = client.post("/admin/notifications/safetycontact/", {
        "action": "retire_contacts", "_selected_action": [contact.pk]})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.retired_at is not None
    assert history(contact)[-1]["username"] == "dm"
