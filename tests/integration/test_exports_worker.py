"""Background exports in a real Celery worker (Redis broker, PostgreSQL): queued through the
outbox, progress and checksum on the record, a download link checked against the scope, and
every download recorded."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from django.contrib.auth.models import Group, User

from edc.core.models import PendingTask
from exports import services
from exports.models import ExportDownload, ExportRecord
from tests.conftest import wait_for
from tests.integration.test_exports import world  # noqa: F401  (fixture)
from tests.unit.test_sdtm_dataset_json import check_dataset_json

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_background_exports_run_in_the_worker_and_download_once_checked(
        api, world, celery_worker):  # noqa: F811
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    api.force_authenticate(sponsor)
    queued = {}
    for dataset, fmt in (("sdtm_qs", "json"), ("ae_listing", "xlsx"), ("ae_incidence", "csv")):
        response = api.post("/api/v1/exports/records/", {
            "dataset": dataset, "format": fmt, "trial": trial.pk}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["state"] == "queued" and response.json()["download_url"] is None
        assert response["Location"].endswith(f"/api/v1/exports/records/{response.json()['id']}/")
        queued[dataset] = response.json()["id"]
    paths = []
    try:
        for dataset, record_id in queued.items():
            record = wait_for(lambda rid=record_id: ExportRecord.objects.filter(
                pk=rid, state__in=["done", "failed"]).first(), timeout=60)
            assert record.state == "done", record.error
            paths.append(services.file_path(record))
            detail = api.get(f"/api/v1/exports/records/{record_id}/").json()
            assert detail["progress"] == 1.0 and detail["mode"] == "background"
            download = api.get(detail["download_url"])
            assert download.status_code == 200, body(download)
            data = body(download)
            assert hashlib.sha256(data).hexdigest() == detail["sha256"] == record.sha256
            assert download["Repr-Digest"] == (
                f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:")
            assert len(data) == record.size_bytes
            if dataset == "sdtm_qs":
                doc = json.loads(data)
                check_dataset_json(doc)
                assert doc["records"] == record.row_count == record.rows_total == 60
        assert ExportDownload.objects.filter(user=sponsor).count() == 3
        assert not PendingTask.objects.exclude(state=PendingTask.State.DONE).filter(
            task_name="exports.tasks.run_export").exists()

        qs_id = queued["sdtm_qs"]
        for other in ("monitor", "investigator"):  # not theirs: not even visible
            api.force_authenticate(world["users"][other])
            assert api.get(f"/api/v1/exports/records/{qs_id}/download/").status_code == 404
        api.force_authenticate(world["users"]["admin"])
        assert api.get(f"/api/v1/exports/records/{qs_id}/download/").status_code == 200

        demoted = User.objects.get(pk=sponsor.pk)  # the sponsor loses the role
        demoted.groups.remove(Group.objects.get(name="sponsor"))
        api.force_authenticate(User.objects.get(pk=sponsor.pk))
        assert api.get(f"/api/v1/exports/records/{qs_id}/download/").status_code == 403
        assert ExportDownload.objects.filter(export_id=qs_id).count() == 2
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
