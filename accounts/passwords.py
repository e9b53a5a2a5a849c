"""Checking a user's password again (log-in, token, e-signature) with lock-out.

21 CFR 11.300(d): attempts at unauthorized use are detected and reported, and the account is
locked after ``AXES_FAILURE_LIMIT`` failures in a row (django-axes, by username, whatever the
entry point: admin log-in, API session log-in, API token or e-signature).
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import HttpRequest


class AccountLocked(Exception):
    """Too many failed password attempts: the account is locked (``AXES_COOLOFF_TIME``)."""

    def __init__(self) -> None:
        super().__init__("This account is locked after repeated failed password attempts; "
                         "ask an administrator to unlock it, or wait for the cool-off period.")


def _django_request(request) -> HttpRequest:
    """The Django request (of a DRF request), or a bare one for calls outside a request."""
    if request is None:
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
    return getattr(request, "_request", request)


def check_credentials(request, username: str, password: str):
    """The user for these credentials, or None (a failure counted towards the lock-out).

    Raises :class:`AccountLocked` when the account is locked, even for the right password.
    """
    django_request = _django_request(request)
    user = authenticate(django_request, username=username, password=password)
    if getattr(django_request, "axes_locked_out", False):
        raise AccountLocked()
    return user


def reauthenticate(request, user, password: str) -> bool:
    """Whether ``password`` is ``user``'s own (e-signature, 11.200(a)); failures count."""
    if not password:
        return False
    found = check_credentials(request, user.get_username(), password)
    return found is not None and found.pk == user.pk
