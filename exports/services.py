"""Export services: who may export what, the export record, streaming and background files.

Access (decided here, enforced by the API):

* roles that may export: sponsor, data_manager, monitor, investigator and admin; site staff may
  not (exports are an oversight function; site staff see their data in the EDC itself);
* rows are limited to the sites of the user's memberships (``edc.core.roles.scope``): a user with a
  site-level membership (an investigator, a site monitor) gets only that site's rows; asking
  for a trial or a site outside the scope is a 404, as everywhere in the API;
* blinding follows ``subjects.api.arm_label_for`` (see ``exports.blinding``);
* no direct identifiers for sponsors: DM has no BRTHDTC for a user with the sponsor role
  (unless an admin); no export carries names, initials or screening documents.

Every export first creates an :class:`~exports.models.ExportRecord` (who, what, scope) and
completes it with the row count and the SHA-256 of the bytes produced.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from edc.core import roles
from edc.core.audit import change_reason
from edc.core.outbox import enqueue
from subjects.models import Site, Subject
from trials.models import Trial

from . import casebook, documents, engine, summaries, writers
from .models import Dataset, ExportRecord, Format

logger = logging.getLogger(__name__)

EXPORT_ROLES = (roles.SPONSOR, roles.DATA_MANAGER, roles.MONITOR, roles.INVESTIGATOR,
                roles.ADMIN)
#: Rows above which a streamed export is refused in favour of a background one.
DEFAULT_SYNC_MAX_ROWS = {Format.CSV: 250_000, Format.JSON: 250_000, Format.NDJSON: 250_000,
                         Format.XPT: 100_000, Format.XLSX: 250_000}
#: A running background export not heard of for this long is taken over by a new delivery.
STALE_AFTER = timedelta(minutes=10)
PROGRESS_EVERY_SECONDS = 1.0


class OutOfScope(Exception):
    """The trial or site is not within the user's memberships."""


def can_export(user) -> bool:
    return bool(user and user.is_authenticated and roles.has_role(user, *EXPORT_ROLES))


def sync_max_rows(fmt: str) -> int:
    configured = getattr(settings, "EXPORT_SYNC_MAX_ROWS", None)
    if isinstance(configured, int):
        return configured
    return {**DEFAULT_SYNC_MAX_ROWS, **(configured or {})}[fmt]


def scope_for(user, trial_id: int, site_id: int | None = None
              ) -> tuple[Trial, tuple[int, ...], Site | None]:
    """The trial and the site ids whose rows ``user`` may export (OutOfScope otherwise)."""
    trial = roles.scope(Trial.objects.filter(pk=trial_id), user, trial="pk", site=None).first()
    if trial is None:
        raise OutOfScope("trial")
    sites = roles.scope(Site.objects.filter(trial=trial), user, trial="trial", site="pk")
    site_ids = sorted(sites.values_list("pk", flat=True))
    site = None
    if site_id is not None:
        if site_id not in site_ids:
            raise OutOfScope("site")
        site = Site.objects.get(pk=site_id)
        site_ids = [site_id]
    return trial, tuple(site_ids), site


def make_spec(user, trial: Trial, site_ids: tuple[int, ...], dataset: str, fmt: str,
              date_from=None, date_to=None) -> engine.Spec:
    return engine.Spec(
        dataset=dataset, fmt=fmt, trial_id=trial.pk, site_ids=site_ids,
        date_from=date_from, date_to=date_to,
        unblinded=not trial.is_blinded or roles.can_see_unblinded(user, trial),
        birth_dates=roles.sees_birth_dates(user),
    )


def spec_of(record: ExportRecord) -> engine.Spec:
    return engine.Spec(
        dataset=record.dataset, fmt=record.format, trial_id=record.trial_id,
        site_ids=tuple(record.site_ids), date_from=record.date_from, date_to=record.date_to,
        unblinded=record.unblinded, birth_dates=record.birth_dates)


def create_record(user, spec: engine.Spec, mode: str, site: Site | None = None
                  ) -> ExportRecord:
    state = ExportRecord.State.RUNNING if mode == ExportRecord.Mode.STREAM else \
        ExportRecord.State.QUEUED
    return ExportRecord.objects.create(
        requested_by=user, dataset=spec.dataset, format=spec.fmt, mode=mode, state=state,
        trial_id=spec.trial_id, site=site, date_from=spec.date_from, date_to=spec.date_to,
        site_ids=list(spec.site_ids), unblinded=spec.unblinded, birth_dates=spec.birth_dates,
        started_at=timezone.now() if mode == ExportRecord.Mode.STREAM else None)


def update_record(record_id: int, reason: str, **fields) -> None:
    """An audited change of the record (the audit trigger needs a reason for change)."""
    with change_reason(reason):
        ExportRecord.objects.filter(pk=record_id).update(updated_at=timezone.now(), **fields)


def _finish(record_id: int, tally: writers.Tally, **fields) -> None:
    update_record(record_id, "export completed", state=ExportRecord.State.DONE,
                  row_count=tally.rows, sha256=tally.sha256, size_bytes=tally.size,
                  finished_at=timezone.now(), **fields)


def file_oid(record: ExportRecord, source: engine.Source) -> str:
    return f"trialdesk.{source.plan.study_id}.{source.plan.name}.{record.uid}"


def open_source(spec: engine.Spec) -> engine.Source:
    return engine.Source(engine.plan(spec), spec).open()


def _bytes(record: ExportRecord, source: engine.Source, tally: writers.Tally,
           on_rows=None) -> Iterator[bytes]:
    """The export's bytes (counted and hashed by ``tally``)."""
    plan = source.plan
    rows = tally.count(source.chunks(), on_rows)
    if record.format == Format.XLSX:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "export.xlsx"
            writers.write_xlsx(str(path), title=plan.sheet, header=plan.header, row_chunks=rows)
            with path.open("rb") as handle:
                yield from tally.hash_bytes(writers.file_blocks(handle))
        return
    if record.format == Format.XPT:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / f"{plan.name.lower()}.xpt"
            writers.write_xpt(str(path), name=plan.name, label=plan.label,
                              variables=plan.variables, row_chunks=rows)
            with path.open("rb") as handle:
                yield from tally.hash_bytes(writers.file_blocks(handle))
        return
    header = engine.dataset_json_header(source, file_oid(record, source)) \
        if record.format in (Format.JSON, Format.NDJSON) else None
    yield from tally.encode(writers.text_chunks(record.format, header=plan.header,
                                                row_chunks=rows, dataset_json_header=header))


def stream(record: ExportRecord, source: engine.Source) -> Iterator[bytes]:
    """The response body of a streamed export; completes the record at the end (or marks it
    aborted when the client goes away, failed on an error)."""
    tally = writers.Tally()
    try:
        yield from _bytes(record, source, tally)
    except GeneratorExit:
        update_record(record.pk, "export aborted by the client",
                      state=ExportRecord.State.ABORTED, row_count=tally.rows,
                      finished_at=timezone.now())
        raise
    except Exception as exc:
        logger.exception("export %s failed", record.pk)
        update_record(record.pk, "export failed", state=ExportRecord.State.FAILED,
                      error=repr(exc)[:2000], finished_at=timezone.now())
        raise
    else:
        _finish(record.pk, tally)
    finally:
        source.close()


def stream_document(record: ExportRecord, chunks: Iterator[str]) -> Iterator[bytes]:
    """A streamed XML document (Define-XML, ODM); completes the record at the end."""
    tally = writers.Tally()
    try:
        yield from tally.encode(chunks)
    except Exception as exc:
        logger.exception("export %s failed", record.pk)
        update_record(record.pk, "export failed", state=ExportRecord.State.FAILED,
                      error=repr(exc)[:2000], finished_at=timezone.now())
        raise
    _finish(record.pk, tally)


def summary(spec: engine.Spec, trial: Trial) -> tuple[bytes, int]:
    """A summary table as JSON or CSV bytes, and its number of rows."""
    compute, columns = summaries.SUMMARIES[spec.dataset]
    rows = compute(spec)
    if spec.fmt == Format.CSV:
        text = "".join(writers.csv_chunks(columns, [[tuple(r[c] for c in columns)
                                                      for r in rows]]))
    else:
        text = json.dumps({
            "dataset": spec.dataset, "study_id": trial.registry_id,
            "generated_at": timezone.now().isoformat(), "unblinded": spec.unblinded,
            "site_ids": list(spec.site_ids),
            "date_from": spec.date_from.isoformat() if spec.date_from else None,
            "date_to": spec.date_to.isoformat() if spec.date_to else None,
            "columns": list(columns), "rows": rows,
        }, ensure_ascii=False)
    return text.encode("utf-8"), len(rows)


def tally_of(data: bytes, rows: int) -> writers.Tally:
    tally = writers.Tally()
    tally.add(data)
    tally.rows = rows
    return tally


def finish_summary(record: ExportRecord, data: bytes, rows: int, **fields) -> None:
    _finish(record.pk, tally_of(data, rows), **fields)


# ------------------------------------------------------------------------- background files


def export_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def file_path(record: ExportRecord) -> Path:
    return Path(settings.MEDIA_ROOT) / record.file_name


def _claim(record_id: int) -> ExportRecord | None:
    """Take the record for this run (None: done, or running elsewhere)."""
    with transaction.atomic():
        record = ExportRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None or record.state == ExportRecord.State.DONE:
            return None
        fresh = timezone.now() - record.updated_at < STALE_AFTER
        if record.state == ExportRecord.State.RUNNING and fresh:
            return None
        with change_reason("background export started"):
            record.state = ExportRecord.State.RUNNING
            record.started_at = timezone.now()
            record.error = ""
            record.save(update_fields=["state", "started_at", "error", "updated_at"])
    return record


def request_casebook(user, *, subject_id: int | None = None, site_id: int | None = None
                     ) -> ExportRecord:
    """Queue the casebook PDF of a subject or of a site (OutOfScope outside the user's
    memberships): an export record of who asked for what, then the Celery task."""
    if subject_id is not None:
        subject = roles.scope(Subject.objects.filter(pk=subject_id), user).first()
        if subject is None:
            raise OutOfScope("subject")
        trial, _, site = scope_for(user, subject.trial_id, subject.site_id)
    else:
        site = roles.scope(Site.objects.filter(pk=site_id), user, site="pk").first()
        if site is None:
            raise OutOfScope("site")
        subject = None
        trial, _, site = scope_for(user, site.trial_id, site.pk)
    with transaction.atomic():
        record = ExportRecord.objects.create(
            requested_by=user, dataset=Dataset.CASEBOOK, format=Format.PDF,
            mode=ExportRecord.Mode.BACKGROUND, trial=trial, site=site, subject=subject,
            site_ids=[site.pk], unblinded=not roles.blinded_to(user, trial),
            birth_dates=roles.sees_birth_dates(user))
        enqueue("exports.tasks.run_export", record.pk)
    return record


def _write_casebook(record: ExportRecord, partial: Path) -> writers.Tally:
    """The casebook PDF of the record's subject or site, as its requester may read it."""
    user = record.requested_by
    if record.subject_id is not None:
        subjects = [record.subject]
        title = f"{record.trial.registry_id} casebook, subject {casebook.shown_id(record.subject)}"
    else:
        subjects = list(casebook.subjects_of_site(record.site, user))
        title = f"{record.trial.registry_id} casebook, site {record.site.code}"
    books = [casebook.subject_book(subject, user) for subject in subjects]
    data = casebook.render_pdf(books, title, user)
    partial.write_bytes(data)
    return tally_of(data, len(books))


def run_background(record_id: int) -> str | None:
    """Produce the file of a queued export (idempotent: a done export is left alone)."""
    record = _claim(record_id)
    if record is None:
        return None
    spec = spec_of(record)
    directory = export_dir()
    directory.mkdir(parents=True, exist_ok=True)
    relative = f"exports/{record.uid}.{record.format}"
    final = Path(settings.MEDIA_ROOT) / relative
    partial = final.with_suffix(final.suffix + ".part")
    try:
        if spec.dataset == Dataset.CASEBOOK:
            tally = _write_casebook(record, partial)
            os.replace(partial, final)
            _finish(record.pk, tally, file_name=relative)
            return relative
        if spec.dataset in documents.DOCUMENTS:
            tally = writers.Tally()
            with partial.open("wb") as handle:
                for block in tally.encode(documents.DOCUMENTS[spec.dataset](spec,
                                                                           record.trial)):
                    handle.write(block)
            os.replace(partial, final)
            _finish(record.pk, tally, file_name=relative)
            return relative
        if not engine.is_row_export(spec.dataset):
            data, rows = summary(spec, record.trial)
            partial.write_bytes(data)
            os.replace(partial, final)
            finish_summary(record, data, rows, file_name=relative)
            return relative
        source = open_source(spec)
        update_record(record.pk, "export started", rows_total=source.total)
        last = [time.monotonic()]

        def progress(rows: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_SECONDS:
                last[0] = now
                update_record(record.pk, "export progress", row_count=rows)

        tally = writers.Tally()
        try:
            with partial.open("wb") as handle:
                for block in _bytes(record, source, tally, progress):
                    handle.write(block)
        finally:
            source.close()
        os.replace(partial, final)
        _finish(record.pk, tally, file_name=relative)
        return relative
    except Exception as exc:
        partial.unlink(missing_ok=True)
        update_record(record.pk, "export failed", state=ExportRecord.State.FAILED,
                      error=repr(exc)[:2000], finished_at=timezone.now())
        raise


def download_name(record: ExportRecord) -> str:
    """The file name a download is offered as."""
    if record.dataset != Dataset.CASEBOOK:
        return engine.file_name(record.trial.registry_id, record.dataset, record.format)
    which = (f"subject-{casebook.shown_id(record.subject)}" if record.subject_id
             else f"site-{record.site.code}")
    return f"{record.trial.registry_id}_casebook_{which}.pdf"


def may_download(user, record: ExportRecord) -> bool:
    """The requester (or an admin), still allowed to export, still reaching every site the
    file covers, and still unblinded if the file is."""
    if not can_export(user):
        return False
    if record.requested_by_id != user.pk and not roles.is_admin(user):
        return False
    try:
        trial, site_ids, _ = scope_for(user, record.trial_id)
    except OutOfScope:
        return False
    if not set(record.site_ids) <= set(site_ids):
        return False
    if record.unblinded and trial.is_blinded and not roles.can_see_unblinded(user, trial):
        return False
    return not (record.birth_dates and record.dataset in (Dataset.SDTM_DM, Dataset.CASEBOOK)
                and not make_spec(user, trial, site_ids, record.dataset, record.format)
                .birth_dates)
