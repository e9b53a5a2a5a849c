"""List pages read as ``.values()`` rows (``edc.core.api.valuelists``, issue 19) show every
record exactly as its detail page does (the serializer on a model instance), for a blinded site
investigator, a sponsor (no birth dates) and an unblinded data manager of the double-blind
seed-004 trial, through filters, orderings and cursor pages; a blinded user's list names no
arm and no product."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from subjects.enrollment import enroll
from tests.factories import load_seed_trial, make_eligible, make_site, make_subject, make_user
from trials.blinding import BLINDED_ARM, BLINDED_PREFIX
from trials.models import Arm, Intervention

pytestmark = pytest.mark.django_db

DAY0 = timezone.localdate() - dt.timedelta(days=150)


@pytest.fixture
def trial004():
    trial = load_seed_trial("NCT06722105")
    p1, p2 = make_site(trial, "P1"), make_site(trial, "P2")
    for n, site in enumerate([p1, p2] * 4):
        subject = make_subject(trial, site, age_at_consent=40 + n,
                               birth_date=dt.date(1985, 5, n + 1),
                               consent_date=DAY0 - dt.timedelta(days=7 + n))
        enroll(make_eligible(subject), enrolled_on=DAY0)
    make_subject(trial, p1, consent_date=DAY0)  # screened, no arm, no subject number
    return {"trial": trial, "p1": p1, "users": {
        "blinded investigator": make_user("inv", "investigator", (trial, p1)),
        "sponsor": make_user("spon", "sponsor", (trial, None)),
        "unblinded data manager": make_user("dm", "data_manager", (trial, None),
                                            unblinded=True)}}


def _pages(api, url: str) -> list[dict]:
    """The rows of the first two cursor pages of ``url``."""
    first = api.get(url)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["next"], "the list must have a second page"
    second = api.get(body["next"])
    assert second.status_code == 200
    return body["results"] + second.json()["results"]


def _same_as_detail(api, rows: list[dict], path: str) -> None:
    for row in rows:
        detail = api.get(f"{path}{row['id']}/")
        assert detail.status_code == 200
        assert json.dumps(row) == json.dumps(detail.json())  # values and key order


@pytest.mark.parametrize("user", ["blinded investigator", "sponsor", "unblinded data manager"])
def test_list_rows_are_the_detail_pages(api, trial004, user):
    api.force_authenticate(trial004["users"][user])
    trial, p1 = trial004["trial"].pk, trial004["p1"].pk
    for query in [f"trial={trial}", f"site={p1}&ordering=screening_number",
                  "status=enrolled&ordering=-consent_date", "ordering=enrolled_on"]:
        rows = _pages(api, f"/api/v1/subjects/?{query}&page_size=2")
        assert len(rows) == 4
        _same_as_detail(api, rows, "/api/v1/subjects/")
        assert all(("birth_date" in row) is (user != "sponsor") for row in rows)
    for query in [f"subject__trial={trial}&ordering=target_date", "overdue=true",
                  f"subject__site={p1}&status=planned&ordering=-target_date", ""]:
        rows = _pages(api, f"/api/v1/visits/?{query}&page_size=3")
        assert len(rows) == 6
        _same_as_detail(api, rows, "/api/v1/visits/")


def test_qlq_c30_list_rows_are_the_detail_pages(api, trial004):
    """Forms scored, pending (a score row, no scores) and never queued (no score row: null),
    answered in full or in part, at visits that schedule the form and at others."""
    from edc.core.audit import change_reason
    from tests.factories import make_dm_qlq_form
    from visits import qlq_c30
    from visits.models import QlqC30Score, Visit
    from visits.services import score_form

    visits = list(Visit.objects.filter(subject__trial=trial004["trial"]).order_by("id")[:9])
    with change_reason("a protocol amendment schedules the form", None):
        Visit.objects.filter(pk__in=[v.pk for v in visits[::2]]).update(qlq_c30_due=True)
    for n, visit in enumerate(visits):
        items = {key: 1 + (n + i) % qlq_c30.ITEM_MAX[key]
                 for i, key in enumerate(qlq_c30.ITEM_KEYS[:30 - 3 * (n % 3)])}
        form = make_dm_qlq_form(visit, **items)
        if n % 3 == 0:
            score_form(form.pk)
        elif n % 3 == 1:
            form.queue_scoring()
    assert QlqC30Score.objects.count() == 6
    for user in trial004["users"]:
        api.force_authenticate(trial004["users"][user])
        for query in ["", "ordering=completion_date", f"subject__site={trial004['p1'].pk}"]:
            rows = _pages(api, f"/api/v1/qlq-c30-forms/?{query}&page_size=2")
            assert len(rows) == 4
            _same_as_detail(api, rows, "/api/v1/qlq-c30-forms/")
        shown = api.get("/api/v1/qlq-c30-forms/?page_size=100").json()["results"]
        assert {row["score"] and row["score"]["state"] for row in shown} == {
            None, "pending", "done"}
        assert {row["unscheduled"] for row in shown} == {True, False}


def test_a_blinded_list_names_no_arm_and_no_product(api, trial004):
    trial = trial004["trial"]
    labels = set(Arm.objects.filter(protocol_version__trial=trial).values_list("label", flat=True))
    products = set(Intervention.objects.filter(protocol_version__trial=trial)
                   .values_list("code", flat=True))

    def read(user) -> tuple[list, list]:
        api.force_authenticate(trial004["users"][user])
        return (api.get("/api/v1/subjects/?page_size=500").json()["results"],
                api.get("/api/v1/visits/?page_size=500").json()["results"])

    subjects, visits = read("unblinded data manager")  # the truth is there to leak
    assert {s["arm_label"] for s in subjects} - {None} == labels
    assert {v["intervention"] for v in visits} - {""} == products
    for user in ["blinded investigator", "sponsor"]:
        subjects, visits = read(user)
        assert subjects and {s["arm_label"] for s in subjects} <= {BLINDED_ARM, None}, user
        assert visits and all(v["intervention"].startswith(BLINDED_PREFIX)
                              for v in visits if v["intervention"]), user
        text = json.dumps([subjects, visits])
        assert not [label for label in labels if label in text], user
        assert not [code for code in products if f'"{code}"' in text], user


def test_a_column_the_view_does_not_name_fails_instead_of_showing_something_else(
        api, trial004, monkeypatch):
    from subjects.api import SubjectViewSet

    monkeypatch.setattr(SubjectViewSet, "list_columns", ())  # the masking needs arm_id
    api.force_authenticate(trial004["users"]["blinded investigator"])
    with pytest.raises(AttributeError, match="arm_id"):
        api.get("/api/v1/subjects/")


def test_a_nested_record_is_read_from_columns_only_when_every_field_is_plain():
    from django.core.exceptions import ImproperlyConfigured
    from rest_framework import serializers

    from edc.core.api.valuelists import _nested_read
    from visits.models import QlqC30Form, QlqC30Score

    def form_with(score_fields: list[str], **declared):
        score = type("Score", (serializers.ModelSerializer,), {
            **declared, "Meta": type("Meta", (), {"model": QlqC30Score, "fields": score_fields}),
            "get_label": lambda self, obj: "x"})
        form = type("Form", (serializers.ModelSerializer,), {
            "score": score(read_only=True),
            "Meta": type("Meta", (), {"model": QlqC30Form, "fields": ["id", "score"]})})
        return form().fields["score"]

    key, reads = _nested_read(form_with(["state", "QL2"]), QlqC30Form)
    assert key == "score__form_id"
    assert [(name, column) for name, column, _ in reads] == [
        ("state", "score__state"), ("QL2", "score__QL2")]
    with pytest.raises(ImproperlyConfigured, match="score.label"):
        _nested_read(form_with(["state", "label"], label=serializers.SerializerMethodField()),
                     QlqC30Form)
