"""Rate limits of ePRO (DRF throttles on Django's cache): the patient pages per client
address, link issue per user. Rates from settings (``EPRO_PAGE_RATE``, ``EPRO_ISSUE_RATE``),
read when a request arrives. Counts live in the default cache, the Redis every web process
shares (``settings.CACHES``), so a limit holds however many processes serve."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class PatientPageThrottle(SimpleRateThrottle):
    """Every patient page (a token guessed or not) counts against the client's address."""

    scope = "epro-page"

    def get_rate(self) -> str:
        return settings.EPRO_PAGE_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class IssueThrottle(SimpleRateThrottle):
    scope = "epro-issue"

    def get_rate(self) -> str:
        return settings.EPRO_ISSUE_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
