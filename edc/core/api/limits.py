"""Limits on what the JSON API reads, answered in the JSON error shape (never a 500 or HTML).

* Body size: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes is refused with 413 before it
  is read (``RequestLimitsMiddleware``); a ``multipart/form-data`` upload may be up to
  ``API_MAX_UPLOAD_BYTES`` (its files are streamed to disk by Django's upload handlers, and
  Django holds its other fields to ``DATA_UPLOAD_MAX_MEMORY_SIZE``).
* Nesting: JSON nested deeper than ``API_JSON_MAX_DEPTH`` (arrays and objects) is refused with
  400 (``JSONParser``): no record of this API nests that deep, and deep input would otherwise
  exhaust the interpreter's recursion limit (``RecursionError``) while it is decoded or
  validated.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"errors": [{"field": None, "code": code, "message": message}]},
                        status=status)


def too_large(limit: int | None = None) -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    return _error("request_too_large", f"The request body is larger than {limit} bytes.", 413)


def _is_upload(request) -> bool:
    return request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data")


class RequestLimitsMiddleware:
    """413 in the JSON error shape for an API request whose body is over the limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and request.method not in ("GET", "HEAD"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return _error("invalid_content_length", "Content-Length is not a number.",
                              400)
            if _is_upload(request):
                limit = getattr(settings, "API_MAX_UPLOAD_BYTES",
                                settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
                return too_large(limit) if length > limit else self.get_response(request)
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return too_large()
            try:
                request.body  # noqa: B018  (read within the limit, once, for every reader)
            except RequestDataTooBig:
                return too_large()
        return self.get_response(request)


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays/objects inside each other
    (brackets inside strings do not count); one pass, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the nesting limit (400, field ``null``, code ``parse_error``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = settings.API_JSON_MAX_DEPTH
        if nesting_depth_exceeds(text, limit):
            raise ParseError(f"JSON nested deeper than {limit} levels is not accepted.")
        try:
            return json.loads(text, parse_constant=self._reject_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

    @staticmethod
    def _reject_constant(name):
        raise ValueError(f"{name} is not valid JSON")
