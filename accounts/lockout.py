"""What a locked-out request gets (``AXES_LOCKOUT_CALLABLE``): the API's JSON error shape
under ``/api/``, django-axes' page elsewhere (admin log-in)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from .passwords import AccountLocked


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"field": None, "code": "account_locked",
                                         "message": str(AccountLocked())}]},
                            status=settings.AXES_HTTP_RESPONSE_CODE)
    return HttpResponse(
        "<h1>Account locked</h1><p>Too many failed log-in attempts. Ask an administrator to "
        "unlock the account, or wait for the cool-off period.</p>",
        status=settings.AXES_HTTP_RESPONSE_CODE)
