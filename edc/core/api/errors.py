"""One JSON error shape for every 4xx: ``{"errors": [{"field", "code", "message"}]}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from edc.core.audit import ReasonRequired
from edc.core.exceptions import Conflict as DomainConflict
from edc.core.exceptions import ConflictValidationError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the record."
    default_code = "conflict"


def _flatten(detail, field: str | None = None) -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            # DRF keys a list's item errors by their index ({0: {...}}): named as a list's
            # are, ``attributions[0].intervention``, whichever check refused the item
            if field is not None and isinstance(key, int):
                name = f"{field}[{key}]"
            else:
                name = key if field is None else f"{field}.{key}"
            out.extend(_flatten(value, None if key == "non_field_errors" else name))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                out.extend(_flatten(value, f"{field}[{index}]" if field else None))
            else:
                out.extend(_flatten(value, field))
        return out
    code = getattr(detail, "code", "invalid")
    return [{"field": field, "code": code, "message": str(detail)}]


def django_validation_detail(exc: DjangoValidationError):
    """A Django ``ValidationError`` as DRF error detail (a dict per field, else a list)."""
    if hasattr(exc, "error_dict"):
        return {key: [str(m) for e in errs for m in e.messages] for key, errs in
                exc.error_dict.items()}
    return list(exc.messages)


def exception_handler(exc, context):
    """DRF handler extended with domain conflicts (``edc.core.exceptions``), model
    validation, missing reasons and integrity errors."""
    if isinstance(exc, DomainConflict):
        return Response(
            {"errors": [{"field": None, "code": exc.code, "message": problem}
                        for problem in exc.problems]},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, ReasonRequired):
        exc = exceptions.ValidationError({"reason": [str(exc)]}, code="reason_required")
    elif isinstance(exc, ConflictValidationError):
        exc = Conflict(str(exc), code=exc.code_name)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_validation_detail(exc))
    elif isinstance(exc, IntegrityError):
        exc = Conflict(f"Refused by a database constraint: {str(exc).splitlines()[0]}")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
    else:
        detail = exc.detail if hasattr(exc, "detail") else str(exc)
        errors = [{"field": None, "code": getattr(detail, "code", exc.default_code
                                                   if hasattr(exc, "default_code") else "error"),
                   "message": str(detail)}]
    return Response({"errors": errors}, status=response.status_code, headers=response.headers)
