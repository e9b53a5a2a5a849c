"""API token authentication: django-rest-knox tokens (hashed, expiring, revocable), refused
while their account is locked out (21 CFR 11.300(d)): a lock-out ends API access through
tokens issued before it, not only new log-ins.

Every API request runs one query here (issue 19), compiled once per process
(``edc.core.prepared``): the presented token with its user, the user's roles and memberships
(``roles.roles_and_reach``, cached on the user for the request) and, with this project's axes
settings (the database handler, locking by username over a cool-off period), the account's
failed log-ins in the cool-off period, counted as axes' database handler counts them
(``get_failures``: the sum of ``failures_since_start`` of the username's attempts since the
cool-off threshold) and compared with axes' failure limit. Other axes settings: axes is
asked, one query more.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from axes.attempts import get_cool_off_threshold
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

from edc.core import roles
from edc.core.prepared import MOMENT, PARAMETER, PreparedQuery

from .passwords import AccountLocked


def _token_query(failures: bool):
    """The presented token (by its key) with its user, the user's roles and memberships and,
    if ``failures``, the account's failed log-ins since a moment (the cool-off threshold)."""
    def build():
        annotations = roles.roles_and_reach(OuterRef("user_id"))
        if failures:
            annotations["_failures"] = Coalesce(Subquery(AccessAttempt.objects.filter(
                username=OuterRef("user__username"), attempt_time__gte=MOMENT)
                .order_by().values("username").annotate(total=Sum("failures_since_start"))
                .values("total")[:1]), 0)
        return get_token_model().objects.filter(token_key=PARAMETER).select_related(
            "user").annotate(**annotations)
    return PreparedQuery(build, (PARAMETER, MOMENT) if failures else (PARAMETER,))


TOKEN_QUERY, TOKEN_AND_FAILURES_QUERY = _token_query(False), _token_query(True)


def _counts_failures() -> bool:
    """Whether the token's query counts the failed log-ins as axes would (its settings)."""
    return (settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
            and list(settings.AXES_LOCKOUT_PARAMETERS) == ["username"]
            and settings.AXES_LOCK_OUT_AT_FAILURE and not settings.AXES_USERNAME_CALLABLE
            and settings.AXES_COOLOFF_TIME is not None)


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate(self, request):
        self._django_request = getattr(request, "_request", request)
        found = super().authenticate(request)
        if found is not None:
            user, auth_token = found
            credentials = {"username": user.get_username()}
            failures = getattr(auth_token, "_failures", None)
            if failures is None:
                locked = AxesProxyHandler.is_locked(self._django_request, credentials)
            else:
                locked = failures >= get_failure_limit(self._django_request, credentials)
            if locked:
                raise AuthenticationFailed(str(AccountLocked()), code="account_locked")
        return found

    def authenticate_credentials(self, token):
        """Knox's check of the presented token, read by the one query of this module."""
        token = token.decode("utf-8")
        key = token[:CONSTANTS.TOKEN_KEY_LENGTH]
        generation = roles._generation
        if _counts_failures():
            AxesProxyHandler.update_request(self._django_request)
            found = TOKEN_AND_FAILURES_QUERY.run(
                key, get_cool_off_threshold(self._django_request))
        else:
            found = TOKEN_QUERY.run(key)
        for auth_token in found:
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error):
                raise AuthenticationFailed(_("Invalid token.")) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user, auth_token = self.validate_user(auth_token)
                roles.remember_roles_and_reach(user, auth_token._roles, auth_token._reach,
                                               generation)
                return user, auth_token
        raise AuthenticationFailed(_("Invalid token."))

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
