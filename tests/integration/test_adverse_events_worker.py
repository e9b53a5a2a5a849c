"""DLT/TI re-evaluation and the SAE beat task in a real Celery worker (Redis, PostgreSQL).

Seed 000 (NCT05699811) TI rule: grade 3-4 treatment-related AE lasting >= 7 days with onset
within 28 days after an MSC-IFNα infusion (CTCAE v5.0 grades; "related" = possible or more,
ICH E2A). SAE clock: report to the sponsor within 24 h of awareness (ICH E2A).
"""

from __future__ import annotations

import datetime as dt

import pytest

from adverse_events.models import AdverseEvent, ToxicityFlag
from edc.core.audit import history
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


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


@pytest.fixture
def setting():
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    site = make_site(trial, "W1")
    subject = make_subject(trial, site, protocol_version=version, status="on_treatment",
                           arm=version.arms.get(code="MONO"))
    make_exposure(subject, "MSC-IFNA", INFUSION)
    nurse = make_user("worker_nurse", "site_staff", (trial, site))
    return {"subject": subject, "nurse": nurse, "msc": version.interventions.get(code="MSC-IFNA")}


def ti_flag(subject):
    return ToxicityFlag.objects.filter(subject=subject, rule_code="TI").first()


def test_changing_an_episode_end_date_reevaluates_the_flag_in_the_worker(api, setting,
                                                                         celery_worker):
    from adverse_events.models import CtcaeTerm

    subject = setting["subject"]
    api.force_authenticate(setting["nurse"])
    response = api.post("/api/v1/adverse-events/", {
        "subject": subject.pk, "term": CtcaeTerm.objects.get(meddra_code="10029366").pk,
        "onset_date": days(1).isoformat(), "resolution_date": days(6).isoformat(),
        "grade_episodes": [{"grade": 3, "start_date": days(1).isoformat(),
                            "end_date": days(6).isoformat()}],
        "attributions": [{"intervention": setting["msc"].pk, "level": "possible"}],
    }, format="json")
    assert response.status_code == 201, response.content
    ae = response.json()
    flag = wait_for(lambda: ti_flag(subject), timeout=20)
    assert flag.computed is False  # 6 days of grade 3: no TI

    episode = ae["grade_episodes"][0]
    response = api.patch(f"/api/v1/adverse-events/{ae['id']}/", {
        "reason": "grade 3 lasted one more day (lab report of day 7)",
        "resolution_date": days(7).isoformat(),
        "grade_episodes": [{**episode, "end_date": days(7).isoformat()}],
    }, format="json")
    assert response.status_code == 200, response.content
    flag = wait_for(lambda: ToxicityFlag.objects.filter(pk=flag.pk, computed=True).first(),
                    timeout=20)
    assert "for 7 days" in flag.reason and f"AE {ae['id']}" in flag.reason

    rows = history(flag)
    assert rows[-1]["reason"] == "toxicity rules re-evaluated"
    assert rows[-1]["changes"]["computed"] == [False, True]
    assert "for 7 days" in rows[-1]["changes"]["reason"][1]
    from adverse_events.models import GradeEpisode

    episode_rows = history(GradeEpisode.objects.get(pk=episode["id"]))
    assert episode_rows[-1]["changes"]["end_date"] == [days(6), days(7)]
    assert episode_rows[-1]["username"] == "worker_nurse"
    assert episode_rows[-1]["reason"].startswith("grade 3 lasted one more day")


def test_overdue_sae_beat_task_in_the_worker_is_idempotent(setting, celery_worker):
    from adverse_events.tasks import raise_overdue_saes

    ae = record_ae(setting["subject"], "10029366", [(3, days(1), days(3))],
                   {"MSC-IFNA": "unlikely"}, serious=True, sae_hospitalization=True,
                   aware_at=dt.datetime(2025, 2, 4, 10, tzinfo=dt.UTC))
    raise_overdue_saes.apply_async()
    raised = wait_for(lambda: AdverseEvent.objects.filter(
        pk=ae.pk, sae_overdue_raised_at__isnull=False).first(), timeout=20)
    raise_overdue_saes.apply_async()
    raise_overdue_saes.apply_async()
    # A marker task after them: once it has run, the two repeats have run too (solo pool).
    marker = record_ae(setting["subject"], "10029366", [(2, days(5), days(6))],
                       {"MSC-IFNA": "unlikely"}, serious=True, sae_hospitalization=True,
                       aware_at=dt.datetime(2025, 2, 8, 10, tzinfo=dt.UTC))
    raise_overdue_saes.apply_async()
    wait_for(lambda: AdverseEvent.objects.filter(
        pk=marker.pk, sae_overdue_raised_at__isnull=False).exists(), timeout=20)
    ae.refresh_from_db()
    assert ae.sae_overdue_raised_at == raised.sae_overdue_raised_at
    updates = [r for r in history(ae) if r["event"] == "update"]
    assert len(updates) == 1
    assert updates[0]["changes"]["sae_overdue_raised_at"] == [None, ae.sae_overdue_raised_at]
    assert updates[0]["reason"].startswith("SAE report overdue")
