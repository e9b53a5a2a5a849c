"""Source documents: upload (size- and type-checked), blinding, retirement in error.

Rules:

* a file is at most ``settings.SOURCE_DOCUMENT_MAX_BYTES`` (20 MiB by default);
* its type is read from its content (magic bytes, by the ``filetype`` library) and must be a
  PDF, PNG, JPEG or TIFF whose file name extension names that same type: a file that only
  claims to be a PDF is refused before anything is stored;
* the SHA-256 of the bytes is stored with the record (ICH E6(R3) 3.16.1: certified copies
  keep the source's content) and names the stored file (content-addressed: identical bytes
  are stored once);
* a document flagged ``reveals_allocation`` is hidden from users blinded to its trial
  (``edc.core.roles.blinded_to``), everywhere documents are listed or read;
* a document is never deleted: one entered in error is retired with the reason, as subjects
  and adverse events are.

Logs name document, trial and site ids only (file names and descriptions may hold personal
data).
"""

from __future__ import annotations

import hashlib
import logging

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from edc.core import roles
from trials import masking

from . import workflow as wf
from .locks import lock_state_of
from .models import Query, SourceDocument
from .targets import target_of

log = logging.getLogger(__name__)

#: Detected media type -> the file name extensions that name it.
ALLOWED_TYPES = {
    "application/pdf": ("pdf",),
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg"),
    "image/tiff": ("tif", "tiff"),
}


class FileTooLarge(Exception):
    """The file is over ``SOURCE_DOCUMENT_MAX_BYTES`` (answered 413 by the API)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The file is {size} bytes; a source document is at most {limit} "
                         "bytes.")


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def checked_file(upload) -> tuple[str, str]:
    """``(media type, sha256)`` of an uploaded file, or the refusal (nothing stored)."""
    limit = settings.SOURCE_DOCUMENT_MAX_BYTES
    if upload.size > limit:
        raise FileTooLarge(upload.size, limit)
    if upload.size == 0:
        raise ValidationError({"file": "The file is empty."})
    upload.seek(0)
    kind = filetype.guess(upload.read(8192))
    media_type = kind.mime if kind is not None else None
    allowed = ", ".join(sorted({e for exts in ALLOWED_TYPES.values() for e in exts}))
    if media_type not in ALLOWED_TYPES:
        raise ValidationError({"file": f"The file's content is not a PDF, PNG, JPEG or TIFF "
                                       f"(accepted: {allowed})."})
    if _extension(upload.name or "") not in ALLOWED_TYPES[media_type]:
        raise ValidationError({"file": f"The file name's extension does not match its "
                                       f"content ({media_type})."})
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return media_type, digest.hexdigest()


def upload(record, upload_file, *, kind: str, user, description: str = "",
           reveals_allocation: bool = False, query: Query | None = None) -> SourceDocument:
    """Store a source document on a CRF record (``query``: the query it answers, whose
    record it is attached to). Locked data takes no new document (409)."""
    if lock_state_of(record) == wf.LOCKED:
        raise wf.IllegalTransition("Locked data is final; no document is attached to it.")
    media_type, sha256 = checked_file(upload_file)
    target = target_of(record)
    name = (upload_file.name or "").rsplit("/", 1)[-1][:255]
    document = SourceDocument(
        **target.denormalized(), target_label=target.label, kind=kind,
        description=description.strip(), file_name=name, media_type=media_type,
        size=upload_file.size, sha256=sha256, reveals_allocation=reveals_allocation,
        query=query, uploaded_by=user)
    storage = document.file.storage
    stored = document.file.field.generate_filename(document, name)
    written = not storage.exists(stored)
    if written:  # the same bytes already stored are the same file (content-addressed)
        stored = storage.save(stored, upload_file)
    document.file.name = stored
    try:
        with transaction.atomic():
            document.save()
    except Exception:
        if written:
            storage.delete(stored)  # never recorded: not kept
        raise
    log.info("source document %s stored (trial %s, site %s)", document.pk,
             document.trial_id, document.site_id)
    return document


def visible(queryset, user):
    """Documents ``user`` may see of those in scope: without the allocation-revealing ones
    of the trials the user is blinded to."""
    if roles.is_admin(user):
        return queryset
    blinded = roles.blinded_trials(user, roles.reach_of(user).sites)
    return queryset.exclude(**masking.hidden_records(SourceDocument), trial_id__in=blinded) \
        if blinded else queryset


@transaction.atomic
def retire(document: SourceDocument, reason: str, user=None) -> SourceDocument:
    """Retire a document entered in error (the wrong subject, the wrong file) with the
    reason; it stays, with its file and audit trail."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the document is retired (entered in error)."})
    document = SourceDocument.objects.select_for_update().get(pk=document.pk)
    if document.retired_at is not None:
        raise ValidationError({"retired_at": "this document is already retired"})
    document.retire(f"entered in error: {reason.strip()}", user)
    log.info("source document %s retired (trial %s, site %s)", document.pk,
             document.trial_id, document.site_id)
    return document
