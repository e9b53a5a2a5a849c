"""System checks that refuse a misconfigured project at start-up."""

from django.conf import settings
from django.core.checks import Error, register

#: The project's own apps (Django's auth admin is for administrators only).
PROJECT_APPS = frozenset({"edc", "trials", "subjects", "visits", "adverse_events",
                          "data_management", "exports"})


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


@register()
def admins_guard_the_allocation(app_configs, **kwargs):
    """Every admin of a model from which a lookup can reach the allocation (an arm, a product,
    a randomization slot) refuses such lookups and orderings (``edc.admin.AllocationGuard``):
    Django's own ``lookup_allowed`` accepts ``?arm_id=`` on any model with an ``arm``."""
    from django.contrib import admin

    from .admin import AllocationGuard

    return [Error(f"{type(model_admin).__name__} ({model._meta.label}) does not use "
                  "edc.admin.AllocationGuard: URL lookups could filter by arm or product.",
                  id="edc.E010")
            for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in PROJECT_APPS
            and not isinstance(model_admin, AllocationGuard)]
