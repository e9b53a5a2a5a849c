"""Where the core reaches domain behaviour: models and modules named in settings.

The core imports no domain app. What it needs from one is named in settings, as Django's
``AUTH_USER_MODEL`` and DRF's ``DEFAULT_*_CLASSES`` are, and checked at start-up
(``edc.core.checks.hooks_are_complete``):

``EDC_TRIAL_MODEL``       the trial model (``app_label.Model``; has ``masking``)
``EDC_MEMBERSHIP_MODEL``  who may see which trial and site (``user``, ``trial``, ``site``,
                          ``unblinded``, ``retired_at``)
``EDC_BLINDING_POLICY``   a module with :data:`BLINDING_POLICY` functions
``EDC_WRITE_GUARD``       a module with :data:`WRITE_GUARD` functions, called on every write of
                          a model with ``data_managed = True`` (locks, signatures, edit checks)
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from django.apps import apps
from django.conf import settings

#: function -> what it answers, for the blinding policy module.
BLINDING_POLICY = {
    "reveals_allocation": "(model, lookup) -> bool: the lookup goes through the allocation",
    "hidden_audit_fields": "(user, model, trial) -> set[str]: audit fields the user may not see",
}
#: function -> when it is called, for the write guard module.
WRITE_GUARD = {
    "applies": "(model) -> bool: the guard watches this model",
    "check_unlocked": "(record): refuse a write to a locked record",
    "check_all_unlocked": "(records): the same for a bulk write, in one query",
    "before_save": "(record) -> watch", "after_save": "(record, watch)",
    "before_update": "(queryset, values) -> snapshot", "after_update": "(model, snapshot)",
    "after_bulk_create": "(records)", "exclude_locked": "(queryset) -> queryset",
    "checked_together": "() -> context: new records of one subject written inside share one "
                        "check",
}


def trial_model():
    return apps.get_model(settings.EDC_TRIAL_MODEL)


def membership_model():
    return apps.get_model(settings.EDC_MEMBERSHIP_MODEL)


@functools.cache
def _module(dotted: str) -> ModuleType:
    return importlib.import_module(dotted)


def blinding_policy() -> ModuleType:
    return _module(settings.EDC_BLINDING_POLICY)


def write_guard() -> ModuleType | None:
    name = getattr(settings, "EDC_WRITE_GUARD", None)
    return _module(name) if name else None


def missing_functions(dotted: str, required: dict[str, str]) -> list[str]:
    """The functions ``required`` of the module ``dotted`` that it does not define."""
    module = _module(dotted)
    return [name for name in required if not callable(getattr(module, name, None))]
