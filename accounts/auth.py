"""API token authentication: django-rest-knox tokens (hashed, expiring, revocable), refused
while their account is locked out (21 CFR 11.300(d)): a lock-out ends API access through
tokens issued before it, not only new log-ins."""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .passwords import AccountLocked


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            django_request = getattr(request, "_request", request)
            AxesProxyHandler.update_request(django_request)
            if AxesProxyHandler.is_locked(django_request,
                                          {"username": found[0].get_username()}):
                raise AuthenticationFailed(str(AccountLocked()), code="account_locked")
        return found
