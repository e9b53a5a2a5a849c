"""trialdesk project package: settings, URLs, Celery app, API plumbing, roles and audit."""

from .celery import app as celery_app

__all__ = ["celery_app"]
