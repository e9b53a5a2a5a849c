"""Source documents (issue 20): files attached to a subject, visit, AE or query, checked by
size and by content, stored with their SHA-256 through the "source_documents" storage, scoped,
blinded, audited, never deleted; monitors list and download them, only site staff upload."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, transaction

from data_management import queries
from data_management.models import SourceDocument
from edc.core.audit import history
from tests.factories import make_dm_visit, make_site, make_subject, make_trial, make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/source-documents/"

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02" + b"\0" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\0" * 40
TIFF = b"II*\x00\x08\x00\x00\x00\x00\x00" + b"\0" * 40
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\0" * 40


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def world(media):
    trial = make_trial()
    site_a, site_b = make_site(trial, "01"), make_site(trial, "02")
    return {
        "trial": trial, "site_a": site_a, "site_b": site_b,
        "subject": make_subject(trial, site_a),
        "subject_b": make_subject(trial, site_b),
        "nurse": make_user("sd_nurse", "site_staff", (trial, site_a)),
        "nurse_b": make_user("sd_nurse_b", "site_staff", (trial, site_b)),
        "monitor": make_user("sd_cra", "monitor", (trial, None)),
        "sponsor": make_user("sd_sponsor", "sponsor", (trial, None)),
    }


def upload(api, target: dict, content: bytes = PDF, name: str = "report.pdf", **fields):
    return api.post(URL, {"file": SimpleUploadedFile(name, content), "kind": "pathology",
                          **target, **fields}, format="multipart")


@pytest.mark.parametrize(("name", "content", "media_type"), [
    ("pathology.pdf", PDF, "application/pdf"), ("scan.PNG", PNG, "image/png"),
    ("photo.jpeg", JPEG, "image/jpeg"), ("consent.tif", TIFF, "image/tiff")])
def test_each_allowed_type_is_stored_with_its_digest_and_downloaded_by_a_monitor(
        api, world, media, name, content, media_type):
    subject = world["subject"]
    api.force_authenticate(world["nurse"])
    response = upload(api, {"subject": subject.pk}, content, name,
                      description="biopsy 2025-01-03")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["media_type"], body["size"], body["file_name"]) == (
        media_type, len(content), name)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert (body["subject"], body["site"], body["form"]) == (
        subject.pk, world["site_a"].pk, "subjects.subject")
    files = stored_files(media)
    assert len(files) == 1 and files[0].read_bytes() == content
    assert name not in str(files[0])  # the stored name carries no original file name

    api.force_authenticate(world["monitor"])
    listed = api.get(URL, {"subject": subject.pk}).json()["results"]
    assert [d["id"] for d in listed] == [body["id"]]
    download = api.get(body["download"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content
    assert download["Content-Type"] == media_type
    assert download["Content-Disposition"] == f'attachment; filename="{name}"'


def test_a_monitor_may_not_upload_nor_a_sponsor_read(api, world, media):
    api.force_authenticate(world["monitor"])
    refused = upload(api, {"subject": world["subject"].pk})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "permission_denied"
    assert not SourceDocument.objects.exists() and stored_files(media) == []
    api.force_authenticate(world["sponsor"])
    assert api.get(URL).status_code == 403


def test_a_file_over_the_limit_is_refused_413_and_nothing_is_kept(api, world, media,
                                                                   settings):
    settings.SOURCE_DOCUMENT_MAX_BYTES = 1000
    api.force_authenticate(world["nurse"])
    response = upload(api, {"subject": world["subject"].pk}, PDF + b"0" * 1000)
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["code"] == "file_too_large" and "1000 bytes" in error["message"]
    settings.API_MAX_UPLOAD_BYTES = 2000  # a body over the upload limit is not even read
    response = upload(api, {"subject": world["subject"].pk}, PDF + b"0" * 3000)
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"
    assert not SourceDocument.objects.exists() and stored_files(media) == []


@pytest.mark.parametrize(("name", "content", "message"), [
    ("results.pdf", ZIP, "not a PDF, PNG, JPEG or TIFF"),  # an archive disguised as a PDF
    ("results.pdf", b"MZ\x90\x00 not a pdf at all", "not a PDF, PNG, JPEG or TIFF"),
    ("results.png", PDF, "extension does not match"),  # a PDF named .png
    ("results", PDF, "extension does not match"),
])
def test_a_file_whose_content_is_not_its_type_is_refused_and_nothing_is_kept(
        api, world, media, name, content, message):
    api.force_authenticate(world["nurse"])
    response = upload(api, {"subject": world["subject"].pk}, content, name)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "file" and message in error["message"]
    assert not SourceDocument.objects.exists() and stored_files(media) == []


def test_exactly_one_target_is_named(api, world, media):
    api.force_authenticate(world["nurse"])
    visit = make_dm_visit(world["subject"])
    both = upload(api, {"subject": world["subject"].pk, "visit": visit.pk})
    none = upload(api, {})
    for response in (both, none):
        assert response.status_code == 400
        assert "exactly one of" in response.json()["errors"][0]["message"]
    assert stored_files(media) == []


def test_documents_are_scoped_to_the_users_sites(api, world, media):
    api.force_authenticate(world["nurse"])
    doc = upload(api, {"subject": world["subject"].pk}).json()
    api.force_authenticate(world["nurse_b"])
    assert api.get(f"{URL}{doc['id']}/").status_code == 404
    assert api.get(f"{URL}{doc['id']}/download/").status_code == 404
    assert api.get(URL).json()["results"] == []
    assert api.post(f"{URL}{doc['id']}/retire/", {"reason": "x"}, format="json"
                    ).status_code == 404
    other = upload(api, {"subject": world["subject"].pk})  # another site's subject
    assert other.status_code == 400 and other.json()["errors"][0]["field"] == "object_id"
    assert SourceDocument.objects.count() == 1 and len(stored_files(media)) == 1


def test_documents_on_a_visit_and_a_query_are_listed_by_their_target(api, world, media):
    subject = world["subject"]
    visit = make_dm_visit(subject)
    query = queries.open_query(visit, "Please attach the lab printout.", world["monitor"])
    api.force_authenticate(world["nurse"])
    on_visit = upload(api, {"visit": visit.pk}, name="visit.pdf").json()
    on_query = upload(api, {"query": query.pk}, name="lab.pdf", kind="lab").json()
    assert (on_visit["visit"], on_visit["form"]) == (visit.pk, "visits.visit")
    assert (on_query["query"], on_query["visit"], on_query["form"]) == (
        query.pk, visit.pk, "visits.visit")
    api.force_authenticate(world["monitor"])
    assert {d["id"] for d in api.get(URL, {"visit": visit.pk}).json()["results"]} == {
        on_visit["id"], on_query["id"]}
    assert [d["id"] for d in api.get(URL, {"query": query.pk}).json()["results"]] == [
        on_query["id"]]
    assert [d["id"] for d in api.get(URL, {"kind": "lab"}).json()["results"]] == [
        on_query["id"]]


def test_a_document_is_never_deleted_and_retired_with_a_reason(api, world, media):
    api.force_authenticate(world["nurse"])
    doc = upload(api, {"subject": world["subject"].pk}).json()
    refused = api.delete(f"{URL}{doc['id']}/")
    assert refused.status_code == 405
    assert "never deleted" in refused.json()["errors"][0]["message"]
    document = SourceDocument.objects.get(pk=doc["id"])
    with pytest.raises(PermissionError):
        document.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        SourceDocument.objects.filter(pk=document.pk).delete()

    url = f"{URL}{doc['id']}/retire/"
    assert api.post(url, {}, format="json").json()["errors"][0]["field"] == "reason"
    api.force_authenticate(world["monitor"])
    assert api.post(url, {"reason": "wrong patient"}, format="json").status_code == 403
    api.force_authenticate(world["nurse"])
    retired = api.post(url, {"reason": "scan of another patient"}, format="json")
    assert retired.status_code == 200
    assert retired.json()["retired_reason"] == "entered in error: scan of another patient"
    again = api.post(url, {"reason": "twice"}, format="json")
    assert again.status_code == 400
    document.refresh_from_db()
    last = history(document)[-1]
    assert (last["username"], last["reason"]) == ("sd_nurse", document.retired_reason)
    assert api.get(f"{URL}{doc['id']}/history/").json()[-1]["reason"] == document.retired_reason
    assert [d["id"] for d in api.get(URL, {"retired": "true"}).json()["results"]] == [doc["id"]]
    assert api.get(URL, {"retired": "false"}).json()["results"] == []
    assert len(stored_files(media)) == 1  # the file stays too


def test_an_allocation_revealing_document_is_hidden_from_blinded_users(api, media):
    trial = make_trial(masking="double")
    site = make_site(trial, "01")
    subject = make_subject(trial, site)
    nurse = make_user("sd_pharmacist", "site_staff", (trial, site), unblinded=True)
    blinded_cra = make_user("sd_blinded_cra", "monitor", (trial, None))
    unblinded_cra = make_user("sd_unblinded_cra", "monitor", (trial, None), unblinded=True)
    api.force_authenticate(nurse)
    pharmacy = upload(api, {"subject": subject.pk}, kind="pharmacy",
                      reveals_allocation="true").json()
    plain = upload(api, {"subject": subject.pk}).json()
    assert pharmacy["reveals_allocation"] is True
    api.force_authenticate(blinded_cra)
    assert [d["id"] for d in api.get(URL).json()["results"]] == [plain["id"]]
    assert api.get(f"{URL}{pharmacy['id']}/download/").status_code == 404
    audit = f"/api/v1/trials/{trial.pk}/audit-trail/"

    def documents_in_audit():
        rows = api.get(audit, {"record_type": "data_management.sourcedocument"}).json()
        return {row["record_id"] for row in rows["results"]}

    assert documents_in_audit() == {plain["id"]}  # nor its audit rows
    api.force_authenticate(unblinded_cra)
    assert {d["id"] for d in api.get(URL).json()["results"]} == {plain["id"], pharmacy["id"]}
    assert documents_in_audit() == {plain["id"], pharmacy["id"]}
    assert api.get(f"{URL}{pharmacy['id']}/download/").status_code == 200


def test_logs_name_no_file_name_or_description(api, world, media, caplog):
    api.force_authenticate(world["nurse"])
    with caplog.at_level(logging.DEBUG):
        doc = upload(api, {"subject": world["subject"].pk}, name="Jane_Roe_consent.pdf",
                     description="Consent of Jane Roe").json()
        api.get(doc["download"])
        api.post(f"{URL}{doc['id']}/retire/", {"reason": "Jane Roe's twin"}, format="json")
    assert f"source document {doc['id']} stored" in caplog.text
    assert "Jane" not in caplog.text and "Roe" not in caplog.text


def test_the_admin_lists_documents_read_only_with_their_download_link(client, api, world,
                                                                      media):
    api.force_authenticate(world["nurse"])
    doc = upload(api, {"subject": world["subject"].pk}).json()
    client.force_login(world["monitor"])
    page = client.get("/admin/data_management/sourcedocument/")
    assert page.status_code == 200
    assert f"/api/v1/source-documents/{doc['id']}/download/" in page.content.decode()
    change = client.get(f"/admin/data_management/sourcedocument/{doc['id']}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert client.get("/admin/data_management/sourcedocument/add/").status_code == 403
    client.force_login(world["sponsor"])
    assert client.get("/admin/data_management/sourcedocument/").status_code == 403


def test_an_adverse_event_takes_documents_and_filters_by_them(api, media):
    from subjects.enrollment import enroll
    from tests.factories import load_ctcae_terms, load_seed_trial, make_eligible, record_ae

    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    day0 = dt.date.today() - dt.timedelta(days=30)
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=day0)),
                     enrolled_on=day0)
    ae = record_ae(subject, "10016256", [(2, day0 + dt.timedelta(days=3), None)])
    nurse = make_user("sd_ae_nurse", "site_staff", (trial, site))
    api.force_authenticate(nurse)
    doc = upload(api, {"adverse_event": ae.pk}, kind="imaging").json()
    assert (doc["form"], doc["object_id"], doc["subject"]) == (
        "adverse_events.adverseevent", ae.pk, subject.pk)
    upload(api, {"subject": subject.pk})
    assert [d["id"] for d in api.get(URL, {"adverse_event": ae.pk}).json()["results"]] == [
        doc["id"]]


def test_control_characters_in_the_file_name_are_dropped_not_a_500(api, world, media):
    api.force_authenticate(world["nurse"])
    response = upload(api, {"subject": world["subject"].pk}, name="scan\x00\x07 one.pdf")
    assert response.status_code == 201, response.content
    assert response.json()["file_name"] == "scan one.pdf"
    nul_text = upload(api, {"subject": world["subject"].pk}, description="a\x00b")
    assert nul_text.status_code == 400
    assert nul_text.json()["errors"][0]["field"] == "description"


def test_identical_bytes_are_stored_once_under_their_digest(api, world, media):
    api.force_authenticate(world["nurse"])
    first = upload(api, {"subject": world["subject"].pk}, name="a.pdf").json()
    second = upload(api, {"subject": world["subject"].pk}, name="b.pdf", kind="lab").json()
    [stored] = stored_files(media)
    assert stored.name == f"{hashlib.sha256(PDF).hexdigest()}.pdf"
    for doc in (first, second):
        download = api.get(doc["download"])
        assert b"".join(download.streaming_content) == PDF
    assert api.get(second["download"])["Content-Disposition"] == 'attachment; filename="b.pdf"'


def test_a_large_upload_with_an_idempotency_key_is_stored_once_and_replayed(api, world, media,
                                                                              settings):
    """A retried upload over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with an Idempotency-Key: the
    key's fingerprint is taken from the parsed form and files, not from the raw body (which
    Django refuses to hold in memory above that size)."""
    from knox.models import AuthToken

    big = PDF + b"%" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1000)
    token = AuthToken.objects.create(user=world["nurse"])[1]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def send(content, key="scan-1"):
        return api.post(URL, {"file": SimpleUploadedFile("scan.pdf", content),
                              "kind": "pathology", "subject": world["subject"].pk},
                        format="multipart", HTTP_IDEMPOTENCY_KEY=key)

    first = send(big)
    assert first.status_code == 201, first.content[:300]
    again = send(big)
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = send(big[:-1] + b"!")
    assert other.status_code == 422 and other.json()["errors"][0]["code"]
    assert SourceDocument.objects.count() == 1
