"""Read-only protocol endpoints per protocol version, blinded for blinded users."""

from __future__ import annotations

import json

import pytest

from tests.factories import load_seed_trial, make_user

pytestmark = pytest.mark.django_db
PARTS = ("arms", "dose-levels", "interventions", "eligibility-criteria", "visit-plan",
         "instruments", "rules")
#: Seed 004's true arm labels and codes (each names its products), never shown to a blinded
#: user; products appear only as the blinded study treatment ``BLINDED:MSC-AT``.
SECRETS_004 = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO_M0")


def get(api, version, part):
    response = api.get(f"/api/v1/protocol-versions/{version.pk}/{part}/")
    assert response.status_code == 200, response.content
    return response.json()[part]


def test_open_label_protocol_parts_carry_ids_and_source_quotes(api):
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    api.force_authenticate(make_user("p_nurse", "site_staff", (trial, trial.sites.first())))
    arms = get(api, version, "arms")
    assert [a["code"] for a in arms["arms"]] == list(
        version.arms.order_by("sequence", "code").values_list("code", flat=True))
    assert all(a["id"] and a["quote"] for a in arms["arms"])
    levels = get(api, version, "dose-levels")["dose_levels"]
    assert [level["code"] for level in levels] == ["DL1", "DL-1", "DL-2"]
    criteria = get(api, version, "eligibility-criteria")["criteria"]
    assert {c["id"] for c in criteria} == set(version.criteria.values_list("pk", flat=True))
    interventions = get(api, version, "interventions")
    assert interventions["interventions"][0]["code"] == "MSC-IFNA"
    assert interventions["regimens"][0]["arm"] == "MONO"
    rules = get(api, version, "rules")
    assert rules["toxicity_rules"][0]["code"] == "TI"
    assert "7 days or more" in " ".join(rules["toxicity_rules"][0]["quote"])
    assert get(api, version, "visit-plan")["visits"][0]["code"] == "SCR"


def test_instruments_name_the_qlq_c30_and_its_schedule(api):
    trial = load_seed_trial("NCT05962450")
    api.force_authenticate(make_user("i_dm", "data_manager", (trial, None)))
    instruments = get(api, trial.current_version(), "instruments")["instruments"]
    assert [i["instrument"] for i in instruments] == ["EORTC QLQ-C30"]
    assert instruments[0]["quote"]


def test_blinded_user_sees_no_arm_to_product_mapping(api):
    trial = load_seed_trial("NCT06722105")
    version = trial.current_version()
    blinded = make_user("b_nurse", "site_staff", (trial, None))
    api.force_authenticate(blinded)
    seen = json.dumps([get(api, version, part) for part in PARTS])
    for secret in SECRETS_004:
        assert secret not in seen, secret
    arms = get(api, version, "arms")
    assert arms["blinded"] is True
    # One label for every arm: a per-arm neutral label would name the arm (issue 15).
    assert len({a["label"] for a in arms["arms"]}) == 1
    assert not {a["label"] for a in arms["arms"]} & set(
        version.arms.values_list("blinded_label", flat=True))
    assert set(arms["arms"][0]) == {"id", "label"}
    interventions = get(api, version, "interventions")
    assert interventions["regimens"] == []
    assert [i["code"] for i in interventions["interventions"]] == ["BLINDED:MSC-AT"]

    unblinded = make_user("u_stat", "data_manager", (trial, None), unblinded=True)
    api.force_authenticate(unblinded)
    assert {r["arm"] for r in get(api, version, "interventions")["regimens"]} == set(
        version.arms.values_list("code", flat=True))
    assert "2 infusions of MSC" in json.dumps(get(api, version, "arms"))


def test_protocol_parts_are_scoped_to_the_users_trials(api):
    trial = load_seed_trial("NCT05699811")
    other = load_seed_trial("NCT05962450")
    api.force_authenticate(make_user("s_nurse", "site_staff", (other, None)))
    response = api.get(f"/api/v1/protocol-versions/{trial.current_version().pk}/arms/")
    assert response.status_code == 404
