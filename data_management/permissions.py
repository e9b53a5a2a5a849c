"""Permissions and scoping of the data-management endpoints.

These endpoints do not use ``edc.core.api.mixins.DataEntryPermission``: monitors are read-only on
CRFs but open queries and verify here. Each write action names its roles in
``view.action_roles``; scoping follows ``edc.core.roles.scope`` through the stored trial and site.
"""

from __future__ import annotations

import contextlib

from rest_framework import exceptions, permissions

from edc.core import roles
from edc.core.api.errors import Conflict

from .exceptions import NotPermitted, RecordLocked, SignatureRejected
from .workflow import IllegalTransition


class WorkflowPermission(permissions.BasePermission):
    """Reads for every authenticated (scoped) user; writes for ``view.action_roles[action]``
    (admins too unless ``view.admin_may_write`` is False)."""

    message = "Your role may not perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        allowed = getattr(view, "action_roles", {}).get(view.action, ())
        if roles.has_role(user, *allowed) or (
                getattr(view, "admin_may_write", True) and roles.is_admin(user)):
            return True
        action = (view.action or "do this").replace("_", " ")
        self.message = (f"Your role may not {action} here; this needs the role "
                        f"{' or '.join(sorted(allowed)) or 'admin'}.")
        return False


def scoped(queryset, user):
    """Data-management rows the user reaches: by site, plus trial-wide rows (no site)."""
    return (roles.scope(queryset.filter(site__isnull=False), user)
            | roles.scope(queryset.filter(site__isnull=True), user, site=None))


def record_scope(user):
    """A ``targets.resolve`` filter limiting CRF records to the user's trials and sites."""
    def apply(queryset, paths):
        return roles.scope(queryset, user, trial=paths.trial, site=paths.site)
    return apply


@contextlib.contextmanager
def domain_errors():
    """Workflow refusals as API errors: 409 for the state of the data, 403 for the user."""
    try:
        yield
    except (IllegalTransition, RecordLocked) as exc:
        code = "locked" if isinstance(exc, RecordLocked) else "illegal_transition"
        raise Conflict(str(exc), code=code) from exc
    except SignatureRejected as exc:
        raise exceptions.PermissionDenied(str(exc), code="signature_rejected") from exc
    except NotPermitted as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc
