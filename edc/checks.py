"""System checks that refuse a misconfigured project at start-up."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def postgresql_only(app_configs, **kwargs):
    """PostgreSQL is the only supported engine: audit triggers and row locks depend on it."""
    errors = []
    for alias, config in settings.DATABASES.items():
        if config.get("ENGINE") != "django.db.backends.postgresql":
            errors.append(
                Error(
                    f"Database '{alias}' uses {config.get('ENGINE')!r}; trialdesk supports "
                    "PostgreSQL only.",
                    hint="Set DATABASE_URL=postgres://user@host:5432/name",
                    id="edc.E001",
                )
            )
    return errors
