"""Schemathesis over the endpoints of issue 20 (acceptance 4: no 5xx), each called by a role
that reaches its data, on real records: the protocol read API, the token endpoints, the audit
explorer and its export, the status matrix, retire-in-error of subjects and adverse events,
randomization administration, confirm-dose and source documents.

The project-wide run (``test_schemathesis``) calls every operation as site staff, who are
refused (403) or find nothing (404) on most of these; here the path ids are the world's real
trial, protocol version, subject, adverse event and document, and half of the examples also
name a real subject or site in their query, so the generated data reaches the services.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from knox.models import AuthToken

from edc.wsgi import application
from tests.integration.test_dose_escalation import _seed_003_first_cohort
from tests.integration.test_schemathesis import CHECKS, keep_connection  # noqa: F401

pytestmark = pytest.mark.django_db

#: Path fragments of the operations added by issue 20.
NEW = ("/protocol-versions/", "/auth/token/", "/audit-trail/", "/status-matrix/",
       "/subjects/{id}/retire/", "/adverse-events/{id}/retire/", "/randomization/",
       "/confirm-dose/", "/source-documents/")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(settings, tmp_path):
    from data_management import source_documents
    from subjects.enrollment import enroll
    from tests.factories import (
        load_ctcae_terms,
        load_seed_trial,
        make_eligible,
        make_subject,
        make_user,
        record_ae,
    )

    settings.MEDIA_ROOT = tmp_path
    load_ctcae_terms()
    trial, site = _seed_003_first_cohort()
    subject = trial.subjects.filter(retired_at__isnull=True).order_by("pk").first()
    pi = make_user("fz_pi", "investigator", (trial, site))
    ae = record_ae(subject, "10016256", [(2, subject.enrolled_on + dt.timedelta(days=2), None)],
                   {"UC-MSC": "unlikely"}, user=pi)
    document = source_documents.upload(subject, SimpleUploadedFile("report.pdf", PDF),
                                       kind="pathology", user=pi)
    randomized = load_seed_trial("NCT05962450")
    r_site = randomized.sites.first()
    allocated = enroll(make_eligible(make_subject(randomized, r_site,
                                                  consent_date=dt.date(2025, 1, 2))),
                       enrolled_on=dt.date(2025, 1, 6))
    other_arm = randomized.current_version().arms.exclude(pk=allocated.arm_id).first()
    users = {
        "pi": pi,
        "dm": make_user("fz_dm", "data_manager", (trial, None), (randomized, None)),
        "stat": make_user("fz_stat", "statistician", (randomized, None), unblinded=True),
    }
    return {"trial": trial, "site": site, "subject": subject, "ae": ae, "document": document,
            "randomized": randomized, "allocated": allocated, "other_arm": other_arm.code,
            "tokens": {k: AuthToken.objects.create(user=u)[1] for k, u in users.items()}}


def _plan(path: str, world) -> tuple[str | None, dict]:
    """The role calling an operation and the real ids of its path."""
    trial, randomized = world["trial"], world["randomized"]
    if "/auth/token/" in path:
        return None, {}
    if "/randomization/" in path:
        return "stat", {"id": randomized.pk}
    if "/protocol-versions/" in path:
        return "dm", {"id": trial.current_version().pk}
    if "/audit-trail/" in path or "/status-matrix/" in path:
        return "dm", {"id": trial.pk}
    if "/confirm-dose/" in path:
        return "pi", {"id": trial.pk}
    if path.startswith("/api/v1/subjects/"):
        return "pi", {"id": world["subject"].pk}
    if path.startswith("/api/v1/adverse-events/"):
        return "pi", {"id": world["ae"].pk}
    return "pi", {"id": world["document"].pk}


def _real_values(case, world, index: int) -> None:
    """Every other example names the world's real subject / site / trial where asked, and
    carries real values where a body names a file, an arm and dose or an allocated subject
    (the generated strings would only meet the first validation)."""
    if index % 2 or not isinstance(case.query, dict):
        return
    real = {"subject": world["subject"].pk, "site": world["site"].pk,
            "trial": world["trial"].pk}
    for key in real.keys() & case.query.keys():
        case.query[key] = real[key]
    if isinstance(case.body, dict) and "file" in case.body:  # a real upload, on a subject
        for key in ("visit", "adverse_event", "query"):
            case.body.pop(key, None)
        case.body.update({"file": PDF, "subject": world["subject"].pk})
    if isinstance(case.body, dict) and "dose_level" in case.body:  # seed 003's next cohort
        case.body.update({"arm": "UC-MSC", "cohort": 2, "dose_level": "B",
                          "frequency_level": "F1"})
    if isinstance(case.body, dict) and "correction" in case.body:  # an allocation error
        case.body.update({"subject": world["allocated"].pk, "actual_arm": world["other_arm"]})


def _check(operation, world, seen: Counter) -> None:
    role, path_ids = _plan(operation.path, world)
    calls = iter(range(10_000))

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        if case.path_parameters:
            case.path_parameters.update({k: v for k, v in path_ids.items()
                                         if k in case.path_parameters})
        _real_values(case, world, next(calls))
        token = world["tokens"][role] if role else None
        if operation.path.endswith("/auth/token/revoke/"):  # revoke a token of its own
            from django.contrib.auth.models import User

            other = User.objects.get_or_create(username="fz_revoker")[0]
            token = AuthToken.objects.create(user=other)[1]
        headers = {"Authorization": f"Token {token}"} if token else {}
        response = case.call(headers=headers)
        seen[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_issue_20_operations_never_error_and_conform(world, keep_connection):  # noqa: F811
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures, checked, seen = [], set(), Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if not any(part in operation.path for part in NEW):
            continue
        checked.add(operation.label)
        try:
            _check(operation, world, seen)
        except Exception as exc:  # collect every failing operation, then report them all
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    assert len(checked) >= 25, sorted(checked)
    assert failures == [], "\n\n".join(failures)
    reached = {label for (label, status) in seen if 200 <= status < 300}
    assert len(reached) >= 15, sorted(seen.items())  # the data paths, not only refusals
