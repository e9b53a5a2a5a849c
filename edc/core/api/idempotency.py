"""Idempotency keys for POSTs from integrations that retry (IETF draft
"The Idempotency-Key HTTP Header Field").

A POST to ``/api/`` with an ``Idempotency-Key`` header is processed once per user and key:

* the key (1-200 printable ASCII characters, else 400) is claimed before any work starts, by
  inserting its unique row: of two concurrent first requests one claims it and the other gets
  409 (still in progress), so one record is created;
* a retry with the same key and request gets the stored response replayed exactly (status,
  body, content type, ``ETag`` and ``Location``; header ``Idempotent-Replayed: true``); the same
  key with a different request is refused (422);
* only successful (2xx) responses are kept: after a failure the claim is released and the
  request may be retried. A claim left by a process that died is taken over after
  ``IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 200
REPLAYED_HEADERS = ("ETag", "Location")


def _fingerprint(request) -> str:
    """SHA-256 of method, path and body. A multipart body (file uploads, which may be larger
    than Django holds in memory) is fingerprinted from its parsed fields and files instead;
    DRF then reads the same parsed ``request.POST``/``request.FILES``."""
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.get_full_path().encode())
    if request.content_type != "multipart/form-data":
        digest.update(request.body)
        return digest.hexdigest()
    for name, values in sorted(request.POST.lists()):
        digest.update(repr((name, values)).encode())
    for name, files in sorted(request.FILES.lists()):
        for upload in files:
            digest.update(repr((name, upload.name, upload.size)).encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return digest.hexdigest()


def _user(request):
    """The API user: session or token (DRF authenticates later, so look the token up)."""
    if request.user.is_authenticated:
        return request.user
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Token "):
        from knox.auth import TokenAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        try:
            return TokenAuthentication().authenticate_credentials(
                header[6:].strip().encode())[0]
        except AuthenticationFailed:
            return None
    return None


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": [{"field": "Idempotency-Key" if status == 400 else None,
                                     "code": code, "message": message}]}, status=status)


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.META.get(HEADER)
        if key is None or request.method != "POST" or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not _valid_key(key):
            return _error(400, "invalid", f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} "
                                          "printable ASCII characters.")
        user = _user(request)
        if user is None:
            return self.get_response(request)
        fingerprint = _fingerprint(request)
        claim = self._claim(user, key, fingerprint)
        if isinstance(claim, HttpResponse):
            return claim
        try:
            response = self.get_response(request)
        except BaseException:
            claim.delete()
            raise
        if 200 <= response.status_code < 300 and not response.streaming:
            claim.status_code = response.status_code
            claim.body = response.content
            claim.content_type = response.get("Content-Type", "application/json")
            claim.headers = {name: response[name] for name in REPLAYED_HEADERS
                             if response.has_header(name)}
            claim.save(update_fields=["status_code", "body", "content_type", "headers"])
        else:
            claim.delete()
        return response

    def _claim(self, user, key: str, fingerprint: str):
        """The new claim row, or the response for a key already taken (replay or refusal)."""
        from edc.core.models import IdempotencyRecord

        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(user=user, key=key,
                                                        fingerprint=fingerprint)
        except IntegrityError:
            pass
        stored = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if stored is None:  # released meanwhile by a failed first request: try once more
            return self._claim(user, key, fingerprint)
        if stored.fingerprint != fingerprint:
            return _error(422, "idempotency_key_reused",
                          "This Idempotency-Key was used for a different request.")
        if stored.status_code is None:
            cutoff = timezone.now() - timedelta(
                seconds=settings.IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS)
            taken_over = IdempotencyRecord.objects.filter(
                pk=stored.pk, status_code__isnull=True, created_at__lt=cutoff,
            ).update(created_at=timezone.now())
            if taken_over:
                stored.refresh_from_db()
                return stored
            return _error(409, "idempotency_key_in_progress",
                          "A request with this Idempotency-Key is still being processed; "
                          "retry later to get its response.")
        response = HttpResponse(bytes(stored.body), status=stored.status_code,
                                content_type=stored.content_type)
        for name, value in stored.headers.items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response
