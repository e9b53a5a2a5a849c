"""Schemathesis on the export operations as a sponsor with data (the project-wide run uses a
site-staff token, which exports refuse with 403): generated parameters, the real trial id, no
5xx and every response (CSV, XLSX, Dataset-JSON, JSON) as documented."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from knox.models import AuthToken

from edc.wsgi import application
from tests.integration.test_exports import world  # noqa: F401  (fixture)
from tests.integration.test_schemathesis import CHECKS, keep_connection  # noqa: F401

pytestmark = pytest.mark.django_db


def _check(operation, token: str, trial_id: int, seen: Counter) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        if isinstance(case.query, dict) and "trial" in case.query:
            case.query["trial"] = trial_id
        if isinstance(case.body, dict) and "trial" in case.body:
            case.body["trial"] = trial_id
        response = case.call(headers={"Authorization": f"Token {token}"})
        seen[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_export_operations_conform_for_a_sponsor(world, keep_connection):  # noqa: F811
    token = AuthToken.objects.create(user=world["users"]["sponsor"])[1]
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures, checked, seen = [], 0, Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if "/exports/" not in operation.path:
            continue
        checked += 1
        try:
            _check(operation, token, world["trial"].pk, seen)
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert checked == 13  # + catalogue, Define-XML, ODM, casebooks
    assert failures == [], "\n\n".join(failures)
    ok = {label for (label, status) in seen if status in (200, 202)}
    assert len(ok) >= 7, seen  # the data paths were exercised, not only refusals
