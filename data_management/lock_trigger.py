"""Locks enforced by PostgreSQL: a trigger on every CRF table (ICH E6(R3) 3.16.1, 21 CFR
11.10(d)).

``data_management.guards`` refuses writes to frozen or locked data with a clear message on
every ORM path of the default manager; this trigger holds the same rule below the ORM, for
``_base_manager``, raw SQL and any other client: an INSERT or UPDATE of a row covered by an
active freeze or lock (of the row itself, its visit, its subject or its trial, before or after
the change) is refused. It is a strict trigger (``edc.core.triggers``): ``pgtrigger.ignore`` does
not switch it off. DELETE is already refused on every clinical table.
"""

from __future__ import annotations

import pgtrigger
from django.apps import apps

from edc.core.triggers import StrictTrigger

from . import workflow as wf
from .targets import Paths, crf_models, paths


def _column(model, name: str) -> str:
    return model._meta.get_field(name).column


def _columns_of(model, p: Paths, row: str) -> dict[str, str]:
    """SQL expressions of the subject, visit and trial ids of ``row`` (OLD or NEW)."""
    pk = f'{row}."{model._meta.pk.column}"'
    if p.subject == "pk":  # the subject itself
        return {"subject": pk, "visit": "NULL", "trial": f'{row}."{_column(model, "trial")}"'}
    if p.parent:  # a child record: through its parent CRF record
        parent_field = model._meta.get_field(p.parent)
        parent = parent_field.related_model
        parent_paths = paths(parent)
        where = f'FROM "{parent._meta.db_table}" WHERE "{parent._meta.pk.column}" = ' \
                f'{row}."{parent_field.column}"'
        subject = f'(SELECT "{_column(parent, "subject")}" {where})'
        visit = "NULL"
        if parent_paths.visit == "pk":
            visit = f'{row}."{parent_field.column}"'
        elif parent_paths.visit:
            visit = f'(SELECT "{_column(parent, "visit")}" {where})'
    else:
        subject = f'{row}."{_column(model, "subject")}"'
        visit = pk if p.visit == "pk" else (
            f'{row}."{_column(model, "visit")}"' if p.visit else "NULL")
    trial = f'(SELECT "trial_id" FROM "subjects_subject" WHERE "id" = {subject})'
    return {"subject": subject, "visit": visit, "trial": trial}


class LockGuard(StrictTrigger):
    """BEFORE INSERT OR UPDATE on a CRF table: refuse rows under an active freeze or lock."""

    name = "lock_guard"
    when = pgtrigger.Before
    operation = pgtrigger.Insert | pgtrigger.Update
    declare = [("_lock", "TEXT")]

    def _covering(self, model, row: str) -> str:
        from .models import Lock

        c = _columns_of(model, paths(model), row)
        states = ", ".join(f"'{s}'" for s in wf.ACTIVE_LOCK_STATES)
        return f"""
            SELECT format('its %s %s was %s', l.level, l.target_label, l.state) INTO _lock
            FROM "{Lock._meta.db_table}" l
            WHERE l.state IN ({states}) AND (
                (l.level = 'form' AND l.object_id = {row}."{model._meta.pk.column}"
                 AND l.content_type_id = (SELECT id FROM django_content_type
                     WHERE app_label = '{model._meta.app_label}'
                     AND model = '{model._meta.model_name}'))
                OR (l.level = 'visit' AND l.visit_id = {c["visit"]})
                OR (l.level = 'subject' AND l.subject_id = {c["subject"]})
                OR (l.level = 'trial' AND l.trial_id = {c["trial"]}))
            ORDER BY l.id LIMIT 1;
        """

    def get_func(self, model):
        # migrations compile triggers against historical models: read the paths of the real one
        model = apps.get_model(model._meta.app_label, model._meta.model_name)
        return f"""
            IF TG_OP = 'UPDATE' THEN
                {self._covering(model, "OLD")}
            END IF;
            IF _lock IS NULL THEN
                {self._covering(model, "NEW")}
            END IF;
            IF _lock IS NOT NULL THEN
                RAISE EXCEPTION '% #% is read-only (frozen or locked): %',
                    TG_TABLE_NAME, NEW."{model._meta.pk.column}", _lock
                    USING ERRCODE = 'check_violation', HINT = 'record_locked';
            END IF;
            RETURN NEW;
        """


def register_lock_triggers() -> None:
    """Called from ``DataManagementConfig.ready()``: every CRF model gets the trigger."""
    for model in crf_models():
        pgtrigger.register(LockGuard())(model)
