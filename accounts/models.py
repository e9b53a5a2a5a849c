"""Account events in the audit trail (21 CFR 11.10(e), 11.300): who granted or revoked which
role, changed an account's access flags, or issued and revoked an API token, and when.

Django's own tables are tracked through proxy models (django-pghistory triggers on the
underlying tables, so every path is caught: admin, API, shell, raw SQL). Memberships are
clinical records (``subjects.Membership``, audited and retired with a reason, never deleted).
"""

from __future__ import annotations

import pghistory
from django.contrib.auth.models import User
from knox.models import AuthToken


class RoleGrant(User.groups.through):
    """A user's role (group): an insert is a grant, a delete a revocation."""

    class Meta:
        proxy = True
        verbose_name = "role grant"


class Account(User):
    """A user account: changes to its name, e-mail and access flags (no password hashes)."""

    class Meta:
        proxy = True
        verbose_name = "account"


class ApiToken(AuthToken):
    """An API token (django-rest-knox): issued, and revoked or expired (the row is removed)."""

    class Meta:
        proxy = True
        verbose_name = "API token"


pghistory.track(pghistory.InsertEvent("role.grant"), pghistory.DeleteEvent("role.revoke"),
                obj_field=None, model_name="RoleGrantEvent")(RoleGrant)
pghistory.track(pghistory.InsertEvent("account.create"), pghistory.UpdateEvent("account.change"),
                exclude=["password", "last_login"], model_name="AccountEvent")(Account)
pghistory.track(pghistory.InsertEvent("token.issue"), pghistory.DeleteEvent("token.revoke"),
                exclude=["digest"], obj_field=None, model_name="ApiTokenEvent")(ApiToken)
