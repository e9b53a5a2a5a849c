"""The application's least-privilege database role (21 CFR 11.10(d), limiting system access).

The owner role (``DATABASE_URL`` of ``migrate``) owns every table, trigger and function; the
application (web, worker, beat) logs in as ``DATABASE_APP_ROLE``, which is not a superuser and
owns nothing, so PostgreSQL itself refuses it TRUNCATE, ALTER TABLE (DISABLE TRIGGER, DROP
TRIGGER), ``session_replication_role`` and role changes. :func:`grant_app_role` runs after
every ``migrate`` (``post_migrate``) and by ``manage.py grant_app_role``:

* creates the role if it is missing (LOGIN, NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOINHERIT;
  ``DATABASE_APP_PASSWORD`` as its password when set);
* grants it SELECT, INSERT, UPDATE, DELETE on every table and USAGE on every sequence of the
  schema, and the same by default on what the owner creates later;
* takes back UPDATE and DELETE on the audit (event) tables and every write on the migration
  ledger: the append-only audit trail is also a matter of privilege, not only of triggers.
"""

from __future__ import annotations

import re

from django.apps import apps
from django.conf import settings
from django.db import connections

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _event_tables() -> list[str]:
    from pghistory.models import Event

    return sorted(m._meta.db_table for m in apps.get_models()
                  if issubclass(m, Event) and not m._meta.proxy and m._meta.managed)


def grant_app_role(using: str = "default") -> str:
    """Create (if needed) and grant the application role on database ``using``; its name."""
    role = settings.DATABASE_APP_ROLE
    if not ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE {role!r} is not a plain lower-case role name")
    conn = connections[using]
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if cursor.fetchone()[0] == role:
            return role  # the application role cannot (and need not) grant itself anything
        cursor.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
                        NOREPLICATION NOBYPASSRLS;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$""")
        if settings.DATABASE_APP_PASSWORD:
            cursor.execute(f"ALTER ROLE {role} PASSWORD %s", [settings.DATABASE_APP_PASSWORD])
        cursor.execute(f"""
            GRANT USAGE ON SCHEMA public TO {role};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT USAGE, SELECT ON SEQUENCES TO {role};
            REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {role};
        """)
        for table in _event_tables():
            cursor.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM {role}')
    return role


def grant_after_migrate(sender, using="default", **kwargs) -> None:
    """``post_migrate`` receiver (connected once, for the ``edc`` app)."""
    grant_app_role(using)
