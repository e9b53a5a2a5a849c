"""System checks that refuse a misconfigured project at start-up."""

import sys
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register

from . import hooks


def _own_app(model) -> bool:
    """A model of one of the project's apps (not Django's or a library's: Django's auth admin
    is for administrators only)."""
    path = Path(model._meta.app_config.path)
    return path.is_relative_to(settings.BASE_DIR) and not path.is_relative_to(sys.prefix)


@register()
def hooks_are_complete(app_configs, **kwargs):
    """Every hook the core calls (``edc.core.hooks``) names a model or a module that exists
    and defines what the core calls."""
    from django.apps import apps

    errors = []
    for setting in ("EDC_TRIAL_MODEL", "EDC_MEMBERSHIP_MODEL"):
        try:
            apps.get_model(getattr(settings, setting))
        except (AttributeError, LookupError, ValueError) as exc:
            errors.append(Error(f"settings.{setting} names no installed model: {exc}",
                                id="edc.E020"))
    for setting, required in (("EDC_BLINDING_POLICY", hooks.BLINDING_POLICY),
                              ("EDC_WRITE_GUARD", hooks.WRITE_GUARD)):
        name = getattr(settings, setting, None)
        if name is None:
            if setting == "EDC_BLINDING_POLICY":
                errors.append(Error(f"settings.{setting} is not set.", id="edc.E021"))
            continue
        try:
            missing = hooks.missing_functions(name, required)
        except ImportError as exc:
            errors.append(Error(f"settings.{setting} = {name!r} cannot be imported: {exc}",
                                id="edc.E021"))
            continue
        errors.extend(Error(f"settings.{setting} = {name!r} defines no {function}"
                            f"{required[function]}", id="edc.E022") for function in missing)
    return errors


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
    a randomization slot) refuses such lookups and orderings (``edc.core.admin.AllocationGuard``):
    Django's own ``lookup_allowed`` accepts ``?arm_id=`` on any model with an ``arm``."""
    from django.contrib import admin

    from .admin import AllocationGuard

    return [Error(f"{type(model_admin).__name__} ({model._meta.label}) does not use "
                  "edc.core.admin.AllocationGuard: URL lookups could filter by arm or product.",
                  id="edc.E010")
            for model, model_admin in admin.site._registry.items()
            if _own_app(model)
            and not isinstance(model_admin, AllocationGuard)]
