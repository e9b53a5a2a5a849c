"""Accounts' Celery tasks."""

from celery import shared_task
from django.utils import timezone
from knox.models import AuthToken


@shared_task(name="accounts.tasks.remove_expired_tokens")
def remove_expired_tokens() -> int:
    """Celery beat (hourly): delete expired API tokens (each deletion is audited as
    ``token.revoke``). Requests refuse an expired token themselves (``accounts.auth``); this
    sweep replaces knox's per-request read of every token of the user."""
    return AuthToken.objects.filter(expiry__lt=timezone.now()).delete()[0]
