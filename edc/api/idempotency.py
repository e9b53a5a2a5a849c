"""Idempotency keys for POSTs from integrations that retry (IETF draft
"The Idempotency-Key HTTP Header Field").

A POST to ``/api/`` with an ``Idempotency-Key`` header is processed once per user and key:
a retry with the same key and the same request gets the stored response (header
``Idempotent-Replayed: true``); the same key with a different request is refused (422).
Only successful (2xx) responses are stored, so a failed request may be retried.
"""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse

HEADER = "HTTP_IDEMPOTENCY_KEY"


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.get_full_path().encode())
    digest.update(request.body)
    return digest.hexdigest()


def _user(request):
    """The API user: session or token (DRF authenticates later, so look the token up)."""
    if request.user.is_authenticated:
        return request.user
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Token "):
        from rest_framework.authtoken.models import Token

        token = Token.objects.select_related("user").filter(key=header[6:].strip()).first()
        return token.user if token else None
    return None


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.META.get(HEADER)
        if not key or request.method != "POST" or not request.path.startswith("/api/"):
            return self.get_response(request)
        from edc.models import IdempotencyRecord

        user = _user(request)
        if user is None:
            return self.get_response(request)
        fingerprint = _fingerprint(request)
        stored = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if stored is not None:
            return self._replay(stored, fingerprint)
        response = self.get_response(request)
        if 200 <= response.status_code < 300 and not response.streaming:
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(
                        user=user, key=key[:200], fingerprint=fingerprint,
                        status_code=response.status_code, body=response.content,
                        content_type=response.get("Content-Type", "application/json"),
                    )
            except IntegrityError:  # a concurrent retry stored it first
                stored = IdempotencyRecord.objects.get(user=user, key=key)
                return self._replay(stored, fingerprint)
        return response

    @staticmethod
    def _replay(stored, fingerprint: str) -> HttpResponse:
        if stored.fingerprint != fingerprint:
            return JsonResponse({"errors": [{
                "field": None, "code": "idempotency_key_reused",
                "message": "This Idempotency-Key was used for a different request."}]},
                status=422)
        response = HttpResponse(bytes(stored.body), status=stored.status_code,
                                content_type=stored.content_type)
        response["Idempotent-Replayed"] = "true"
        return response
