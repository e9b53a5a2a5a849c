"""API token authentication: django-rest-knox tokens (hashed, expiring, revocable), refused
while their account is locked out (21 CFR 11.300(d)): a lock-out ends API access through
tokens issued before it, not only new log-ins."""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired
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

    def _cleanup_token(self, auth_token) -> bool:
        """Knox's check of the presented token only: an expired token is refused (and removed,
        audited as ``token.revoke``). Knox also reads every other token of the user on every
        request to delete its expired ones; the hourly ``accounts.tasks.remove_expired_tokens``
        does that instead (issue 19: one query for the token)."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False
