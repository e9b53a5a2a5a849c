"""Optimistic concurrency for every update (RFC 9110 8.8.3 ``ETag``, 13.1.1 ``If-Match``).

A record's version is its ``updated_at`` (set on every save): reads of one record answer with
an ``ETag``; a write to one record sent with ``If-Match`` is refused with 412 when the record
changed since that version was read, so the last writer never silently overwrites a change
it has not seen. Without ``If-Match`` a write goes through (clients that do not send it).
"""

from __future__ import annotations

from rest_framework import permissions, status
from rest_framework.exceptions import APIException

IF_MATCH = "HTTP_IF_MATCH"
#: Actions whose response describes the record itself (not its history or a list).
RECORD_ACTIONS_SAFE = frozenset({"retrieve"})


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The record changed since you read it."
    default_code = "precondition_failed"


def etag_for(pk, updated_at) -> str | None:
    if pk is None or updated_at is None:
        return None
    return f'"{pk}-{int(updated_at.timestamp() * 1_000_000)}"'


def current_etag(obj, *, lock: bool = False) -> str | None:
    """The record's version as stored (``lock``: and lock the row until the transaction ends)."""
    if not hasattr(obj, "updated_at"):
        return None
    rows = type(obj)._base_manager.filter(pk=obj.pk)
    if lock:
        rows = rows.select_for_update()
    return etag_for(obj.pk, rows.values_list("updated_at", flat=True).first())


def check_if_match(request, obj, *, lock: bool = False) -> None:
    """412 unless ``If-Match`` (when sent) names the record's current version."""
    header = request.META.get(IF_MATCH)
    if not header:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    if "*" in wanted:
        return
    current = current_etag(obj, lock=lock)
    if current not in wanted:
        raise PreconditionFailed(
            f"This record was changed by someone else since you read it (current version "
            f"{current}); read it again and re-apply your change.")


class VersionedMixin:
    """ViewSet mixin: ``ETag`` on a record's reads and writes, ``If-Match`` honoured on every
    unsafe request to one record (updates and detail actions)."""

    def get_object(self):
        obj = super().get_object()
        if self.request.method not in permissions.SAFE_METHODS:
            check_if_match(self.request, obj)
        self._versioned_object = obj
        return obj

    def read_after_write(self, obj):
        """``obj`` was read from the database after the request's write (the answer's
        record): its ``updated_at`` is the stored version, the ``ETag`` is not read again."""
        self._versioned_object, self._versioned_read_after_write = obj, True
        return obj

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        obj = getattr(self, "_versioned_object", None)
        unsafe = request.method not in permissions.SAFE_METHODS
        if (obj is not None and 200 <= response.status_code < 300
                and (unsafe or self.action in RECORD_ACTIONS_SAFE)):
            stale = unsafe and not getattr(self, "_versioned_read_after_write", False)
            etag = (current_etag(obj) if stale
                    else etag_for(obj.pk, getattr(obj, "updated_at", None)))
            if etag:
                response["ETag"] = etag
        return response
