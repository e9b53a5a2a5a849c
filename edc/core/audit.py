"""Audit trail and soft retirement for clinical models (ICH E6(R3) 4.2 / 21 CFR 11.10(e)).

Every clinical model is decorated with :func:`audited`:

* django-pghistory triggers write an event row (full snapshot, who, when, reason) on every
  INSERT and UPDATE, including bulk updates and raw SQL;
* event tables are append-only (UPDATE/DELETE refused by trigger and by privilege) and each
  event row carries the database role that wrote it and a hash chained to the previous row of
  its table (:class:`AuditEvent`, ``edc.core.audit_integrity``);
* a DELETE on the clinical table itself is refused by the database;
* an UPDATE is refused by the database unless the current pghistory context carries a
  non-empty ``reason`` (a reason for change is required once a record has been saved).

All of these triggers ignore ``pgtrigger.ignore`` (``edc.core.triggers``).

Code that changes a saved record runs inside :func:`change_reason`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

import pghistory
import pghistory.models
import pghistory.runtime
import pgtrigger
from django.db import models, transaction
from django.utils import timezone

from . import hooks, triggers

REASON_REQUIRED_SQL = """
    IF coalesce(
        btrim(
            (nullif(current_setting('pghistory.context_metadata', true), '')::jsonb)
            ->> 'reason'
        ),
        ''
    ) = '' THEN
        RAISE EXCEPTION 'reason for change required to update %', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', HINT = 'reason_required';
    END IF;
    RETURN NEW;
"""


class ReasonRequired(Exception):
    """A saved clinical record was changed without a reason for change."""

    def __init__(self, label: str = "record") -> None:
        super().__init__(f"A reason for change is required to change this {label}.")


class AuditEvent(pghistory.models.Event):
    """Base of every audit event model: who connected, and the row's link in the hash chain.

    Both are set by the database, whatever the INSERT says: the role as the row is inserted
    (``edc.core.triggers.HashChain``), the hash when its transaction commits
    (``edc.core.triggers.ChainAtCommit``).
    """

    # NULL, not "": only rows written before the chain existed lack them (DJ001 does not apply)
    pgh_db_user = models.CharField(max_length=63, null=True, editable=False,  # noqa: DJ001
                                   help_text="Database role of the connection that wrote it")
    pgh_hash = models.CharField(max_length=64, null=True, editable=False,  # noqa: DJ001
                                help_text="SHA-256 chained to the previous row of the table")

    class Meta:
        abstract = True
        verbose_name = "event"  # pghistory names the reverse accessor after it: obj.events


def audited(model: type[models.Model]) -> type[models.Model]:
    """Class decorator: track a clinical model and protect it as described above."""
    model = pgtrigger.register(
        triggers.StrictProtect(name="no_delete", operation=pgtrigger.Delete),
        triggers.StrictTrigger(
            name="reason_required",
            when=pgtrigger.Before,
            operation=pgtrigger.Update,
            func=REASON_REQUIRED_SQL,
        ),
    )(model)
    return pghistory.track(
        triggers.InsertEvent(), triggers.UpdateEvent(),
        base_model=AuditEvent, model_name=f"{model.__name__}Event", append_only=False,
        meta={"triggers": triggers.audit_event_triggers()},
    )(model)


#: The metadata of the enclosing :func:`change_reason` blocks, merged as pghistory merges its
#: context (an inner block's reason stays until the outermost block ends).
_active_context: ContextVar[dict | None] = ContextVar("edc_change_reason", default=None)


def current_reason() -> str | None:
    """The reason for change of the enclosing :func:`change_reason` block, if any."""
    metadata = _active_context.get()
    reason = (metadata or {}).get("reason")
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


@contextlib.contextmanager
def change_reason(reason: str, user=None) -> Iterator[None]:
    """Attach a reason (and the acting user) to every audit event written inside the block, and
    to none after it: where an enclosing pghistory context (a request's) exists, pghistory
    merges the block's metadata into it and writes it in front of every later statement, so
    the outermost block puts that context's metadata back as it was when it ends; where none
    exists, the setting is cleared in the database (:func:`_clear_database_context`)."""
    if not reason or not reason.strip():
        raise ReasonRequired()
    metadata = {"reason": reason.strip()}
    if user is not None:
        metadata["user"] = getattr(user, "pk", user)
        metadata["username"] = getattr(user, "get_username", lambda: str(user))()
    outer = _active_context.get()
    token = _active_context.set(dict(metadata)) if outer is None else None
    if outer is not None:
        outer.update(metadata)
    enclosing = pghistory_context() if token is not None else None
    before = dict(enclosing.metadata) if enclosing is not None else None
    try:
        with pghistory.context(**metadata):
            yield
    finally:
        if token is not None:
            _active_context.reset(token)
        if enclosing is not None:  # pghistory merged the block into it: take the block out
            enclosing.metadata.clear()
            enclosing.metadata.update(before)
    if token is not None and enclosing is None:
        _clear_database_context()


def pghistory_context():
    """pghistory's current audit context (its id and metadata), or None: pghistory has no
    public API to read it, so this module is the one place that reads ``pghistory.runtime``."""
    return getattr(pghistory.runtime._tracker, "value", None)


def current_actor() -> int | None:
    """The id of the user the enclosing audit context names (a request's, a service's)."""
    context = pghistory_context()
    user = context.metadata.get("user") if context else None
    return user if isinstance(user, int) else None


@contextlib.contextmanager
def separate_reason(reason: str, user=None) -> Iterator[None]:
    """A reason for the writes inside the block only, in an audit context of its own: the
    enclosing context (e.g. a request's, which was given no reason) is left as it was.

    pghistory merges a nested context into the enclosing one (the reason would stay on it),
    so the enclosing context is set aside for the block: the one place that touches
    pghistory's context state (``pghistory.runtime``), which has no public API for it."""
    tracker = pghistory.runtime._tracker
    outer = pghistory_context()
    if outer is None:
        with change_reason(reason, user):
            yield
        return
    metadata = {**outer.metadata, "reason": reason.strip()}
    tracker.value = pghistory.runtime.Context(id=uuid.uuid4(), metadata=metadata)
    token = _active_context.set(metadata)
    try:
        yield
    finally:
        _active_context.reset(token)
        tracker.value = outer


def _clear_database_context() -> None:
    """pghistory stores the context with ``set_config(..., is_local => true)``, which lasts
    until the transaction ends, not until the block does: clear it, so that a later change in
    the same transaction neither borrows this block's reason and user in its audit row nor
    passes the database's reason-required check. Needed only where no pghistory context
    encloses the block: an enclosing one (a request's) sets both values again, as
    :func:`change_reason` put them back, with every later write (``pghistory.runtime``), so
    clearing them there is a round trip for nothing."""
    conn = transaction.get_connection()
    if conn.in_atomic_block and not conn.needs_rollback:
        with conn.cursor() as cursor:
            cursor.execute("SELECT set_config('pghistory.context_id', '', true), "
                           "set_config('pghistory.context_metadata', '', true)")


def history(obj: models.Model) -> list[dict]:
    """Audit rows of one record, oldest first: when, who, reason, event and changed values.

    ``changes`` maps each field to ``[old, new]`` (``old`` is None on insert).
    """
    event_model = obj.pgh_event_model
    rows = []
    previous: dict | None = None
    data_fields = [
        f.attname for f in event_model._meta.fields if not f.attname.startswith("pgh_")
    ]
    for event in event_model.objects.filter(pgh_obj_id=obj.pk).order_by("pgh_id"):
        snapshot = {name: getattr(event, name) for name in data_fields}
        context = event.pgh_context or {}
        changes = {
            name: [None if previous is None else previous.get(name), value]
            for name, value in snapshot.items()
            if previous is None or previous.get(name) != value
        }
        rows.append(
            {
                "at": event.pgh_created_at,
                "event": event.pgh_label,
                "user": context.get("user"),
                "username": context.get("username"),
                "reason": context.get("reason"),
                "changes": changes,
            }
        )
        previous = snapshot
    return rows


def guarded_write(using, check, write):
    """``write(check())`` as one unit: the write guard's ``check`` (locks, signatures), then
    the write and its after-hooks. Outside a transaction, in one of their own; inside the
    caller's, without a savepoint (as Django's own ``Model.save_base``: two statements fewer
    per write): ``check`` runs first, so a refusal leaves the caller's transaction usable,
    and an error while writing marks it for rollback, as a half-done write must be."""
    if not transaction.get_connection(using).in_atomic_block:
        with transaction.atomic(using=using):
            return write(check())
    checked = check()
    with transaction.atomic(using=using, savepoint=False):
        return write(checked)


def subject_transaction(locked: bool):
    """The atomic block of a service handed a subject: with ``locked`` (the caller's instance,
    read ``FOR UPDATE`` in its transaction) the service joins that transaction without a
    savepoint (a refusal rolls it back), and refuses to run outside one; otherwise a block
    of its own (a savepoint inside a caller's transaction)."""
    if locked and not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("a locked subject needs its transaction")
    return transaction.atomic(savepoint=not locked)


@contextlib.contextmanager
def checked_together() -> Iterator[None]:
    """New CRF records of one subject written inside the block (a service writing a record
    with its parts) share one check of the locks and signatures covering them: the write
    guard's ``checked_together``."""
    guard = hooks.write_guard()
    with guard.checked_together() if guard is not None else contextlib.nullcontext():
        yield


class ClinicalQuerySet(models.QuerySet):
    """Default queryset of clinical models: bulk writes obey data management too.

    ``update()`` stamps ``updated_at`` like ``save()`` does (the record's version). For CRF
    models (see ``data_management.targets``) ``update()`` (and ``bulk_update()``, which
    goes through it) and ``bulk_create()`` refuse rows under a freeze or lock
    (``data_management.exceptions.RecordLocked``), and a bulk change to verified or signed data
    clears the verification / invalidates the signature, as ``save()`` does.
    """

    def update(self, **kwargs):
        kwargs.setdefault("updated_at", timezone.now())  # a new version (edc.core.api.concurrency)
        hooks = self.model.data_management_hooks()
        if hooks is None:
            return super().update(**kwargs)
        def write(snapshot):
            count = super(ClinicalQuerySet, self).update(**kwargs)
            hooks.after_update(self.model, snapshot)
            return count

        return guarded_write(self.db, lambda: hooks.before_update(self, kwargs), write)

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        hooks = self.model.data_management_hooks()
        if hooks is None:
            return super().bulk_create(objs, *args, **kwargs)
        objs = list(objs)

        def write(_):
            created = super(ClinicalQuerySet, self).bulk_create(objs, *args, **kwargs)
            hooks.after_bulk_create(created)
            return created

        return guarded_write(self.db, lambda: hooks.check_all_unlocked(objs), write)

    bulk_create.alters_data = True

    def bulk_update(self, objs, fields, *args, **kwargs):
        """Checked before Django's own ``atomic(savepoint=False)`` block, so a refusal leaves
        the caller's transaction usable; the rows are then written through ``update()``."""
        hooks = self.model.data_management_hooks()
        if hooks is not None:
            objs = list(objs)
            hooks.check_all_unlocked(objs)
        return super().bulk_update(objs, fields, *args, **kwargs)

    bulk_update.alters_data = True

    def unlocked(self):
        """The rows not covered by an active freeze or lock (e.g. for periodic tasks)."""
        hooks = self.model.data_management_hooks()
        return self if hooks is None else hooks.exclude_locked(self)


class ClinicalModel(models.Model):
    """Base of every clinical record: when it was made and changed, and soft retirement.

    Records are never deleted: ``retire()`` marks them retired with a reason instead.
    Saving an existing record needs a reason for change (see :func:`change_reason`).

    Data management (``data_management.guards``) hooks into every write of a CRF record (a
    subject or a model with a ``subject`` foreign key, unless ``data_managed = False``):
    ``save()``, ``full_clean()`` and the default queryset refuse changes to frozen or locked
    data, and a change to verified or signed data clears the verification or invalidates the
    signature in the same transaction (21 CFR 11.10(e), 11.70; ICH E6(R3) 3.16.1).
    """

    #: False for models whose writes are not data under management (locks, queries, ...).
    data_managed = True
    #: Fields only a service sets, with its rules (enrollment, status changes, the visit
    #: schedule, exposure recording): never corrected in place, e.g. by a query answer.
    workflow_fields: frozenset[str] = frozenset()

    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_reason = models.TextField(blank=True, editable=False)

    objects = ClinicalQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding and current_reason() is None:
            raise ReasonRequired(self._meta.verbose_name)
        hooks = self.data_management_hooks()
        if hooks is None:
            super().save(*args, **kwargs)
            return
        def write(watch):
            super(ClinicalModel, self).save(*args, **kwargs)
            hooks.after_save(self, watch)

        guarded_write(kwargs.get("using"), lambda: hooks.before_save(self), write)

    def full_clean(self, *args, **kwargs) -> None:
        """Model validation (model forms, the admin) also refuses frozen or locked data."""
        hooks = self.data_management_hooks()
        if hooks is not None:
            hooks.check_unlocked(self)
        super().full_clean(*args, **kwargs)

    def derive(self) -> None:
        """Recompute the values stored from other fields of the record (none here); called
        before a value corrected in place (a query answer) is saved."""

    def on_corrected(self) -> None:
        """Queue the work a corrected value needs (none here); called after it is saved."""

    def delete(self, *args, **kwargs):
        raise PermissionError(
            f"{self._meta.verbose_name} records are never deleted; retire them with a reason."
        )

    @classmethod
    def data_management_hooks(cls):
        """The write guard (``settings.EDC_WRITE_GUARD``) for CRF models, None for every
        other model."""
        if not cls.data_managed:
            return None
        guard = hooks.write_guard()
        return guard if guard is not None and guard.applies(cls) else None

    def retire(self, reason: str, user=None) -> None:
        """Soft-retire the record with a reason; it stays in the database and its history."""

        with change_reason(reason, user):
            self.retired_at = timezone.now()
            self.retired_reason = reason.strip()
            self.save(update_fields=["retired_at", "retired_reason", "updated_at"])
