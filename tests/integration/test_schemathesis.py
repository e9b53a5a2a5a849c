"""Property-based API test: schemathesis against /api/schema/, as site staff.

Every operation of the OpenAPI document is called with generated data (hypothesis, fixed
derandomized examples); no response may be a 5xx or violate the documented schema.
"""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from edc.wsgi import application

#: No 5xx, and every response as documented. Not included: "positive data acceptance" (a
#: filter on a record id that does not exist is a 400 here, by design) and "ignored auth"
#: (this test always sends a real token; authentication has its own tests).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_token():
    from knox.models import AuthToken

    from subjects.enrollment import enroll
    from tests.factories import load_seed_trial, make_eligible, make_subject, make_user

    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    user = make_user("fuzz_nurse", "site_staff", (trial, site))
    enroll(make_eligible(make_subject(trial, site)), enrolled_on=dt.date(2025, 1, 6))
    return AuthToken.objects.create(user=user)[1]


def _check(operation, token: str) -> None:
    from knox.models import AuthToken

    revokes = operation.path.endswith("/auth/token/revoke/")

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        used = token
        if revokes:  # revoking (all=true: every token of the user) would end this run's
            # token: revoke tokens of another user
            from django.contrib.auth.models import User

            other = User.objects.get_or_create(username="fuzz_revoker")[0]
            used = AuthToken.objects.create(user=other)[1]
        response = case.call(headers={"Authorization": f"Token {used}"})
        case.validate_response(response, checks=CHECKS)

    run()


@pytest.fixture
def keep_connection():
    """Calling the WSGI app directly would close the test's connection at request end (the
    Django test client disconnects the same handlers)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_operation_conforms_and_never_errors(staff_token, keep_connection):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _check(operation, staff_token)
        except Exception as exc:  # collect every failing operation, then report them all
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert operations > 20
    assert failures == [], "\n\n".join(failures)
