"""Hooks that ``edc.core.audit.ClinicalModel`` runs on every write of a CRF record.

* **Locks** (ICH E6(R3) 3.16.1, 21 CFR 11.10(d)): a record under an active freeze or lock, of
  itself, its visit, its subject or its trial, cannot be created, changed or retired, through
  ``save()`` (API, admin, services, tasks), ``QuerySet.update()``, ``bulk_update()`` and
  ``bulk_create()``; the refusal is :class:`~data_management.exceptions.RecordLocked`.
* **Consequences** (21 CFR 11.70, ICH E6(R3) 3.11.4): a change to a verified record or field
  clears its verification; a change to (or an addition of) signed data invalidates the
  signature. Both are audited UPDATEs in the same transaction, attributed to the user of the
  change and carrying its reason for change.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from edc.core.audit import current_actor, current_reason, separate_reason
from edc.core.prepared import PreparedValues

from . import triggers
from . import workflow as wf
from .coverage import (
    _lock_q,
    _outer_lock_q,
    _record_lock_q,
    _trial_of_subject,
    active_locks,
    record_lock_q,
)
from .exceptions import RecordLocked
from .targets import paths, subject_id_of, visit_id_of

IGNORED_FIELDS = {"created_at", "updated_at"}


def applies(model) -> bool:
    """Whether writes to ``model`` are data under management (a CRF model)."""
    return paths(model) is not None


# ---------------------------------------------------------------- locks

def refusal(record_label: str, lock) -> RecordLocked:
    who = lock.changed_by.get_username() if lock.changed_by_id else "a data manager"
    when = lock.changed_at.strftime("%Y-%m-%d %H:%M UTC")
    why = f" ({lock.reason})" if lock.reason else ""
    what = "the form" if lock.level == "form" else f"its {lock.level} {lock.target_label}"
    return RecordLocked(
        f"{record_label} is read-only: {what} was {lock.state} by {who} on {when}{why}. "
        "Ask a data manager to unlock it, with a reason, first."
    )


def _label(record) -> str:
    name = str(record._meta.verbose_name)
    return f"This {name}" if record.pk is None else f"{name[:1].upper()}{name[1:]} #{record.pk}"


def check_unlocked(record) -> None:
    """Raise :class:`RecordLocked` if the record is covered by an active freeze or lock."""
    lock = active_locks().filter(_record_lock_q(record)).first()
    if lock is not None:
        raise refusal(_label(record), lock)


def check_all_unlocked(records) -> None:
    """``check_unlocked`` for a bulk write. New records (the schedule at enrollment, imports)
    in one query: the locks of their subjects, visits and trials; where one covers some of them,
    the refusal names the first record it covers. Saved records one by one (their form-level
    locks and stored values)."""
    records = list(records)
    new = [r for r in records if r._state.adding and r.pk is None]
    for record in records:
        if not (record._state.adding and record.pk is None):
            check_unlocked(record)
    if not new:
        return
    subjects = sorted({subject_id_of(r) for r in new} - {None})
    visits = sorted({visit_id_of(r) for r in new} - {None})
    by_pk = paths(type(new[0])).subject == "pk"  # new subjects: their own trials
    trials = sorted({r.trial_id for r in new} - {None}) if by_pk else []
    if _NEW_ROWS_LOCKED.run((by_pk, len(visits), len(subjects), len(trials)),
                            *visits, *subjects, *trials):
        for record in new:
            check_unlocked(record)


def _new_rows_locked_query(shape, *values):
    """The query of ``check_all_unlocked`` for ``shape`` (whether the records are subjects,
    the number of visits, subjects and trials): an active lock of one of the visits, subjects
    or their trials (of a subject's other records: the subjects' trials as stored)."""
    from subjects.models import Subject

    by_pk, n_visits, n_subjects, _ = shape
    visits, subjects = values[:n_visits], values[n_visits:n_visits + n_subjects]
    trials = (values[n_visits + n_subjects:] if by_pk
              else Subject.objects.filter(pk__in=subjects).values("trial_id"))
    covering = (Q(level="visit", visit_id__in=visits) | Q(level="subject", subject_id__in=subjects)
                | Q(level="trial", trial_id__in=trials))
    return active_locks().filter(covering).order_by().values("pk")[:1]


_NEW_ROWS_LOCKED = PreparedValues(_new_rows_locked_query)


def check_queryset_unlocked(queryset, new_values: dict | None = None) -> None:
    """Raise :class:`RecordLocked` if any row of ``queryset`` (or the subject/visit it is being
    moved to by ``new_values``) is covered by an active freeze or lock."""
    model = queryset.model
    locks = active_locks().filter(_outer_lock_q(model))
    row = (model._base_manager.filter(pk__in=queryset.values("pk"))
           .annotate(_dm_lock=Subquery(locks.values("pk")[:1]))
           .filter(_dm_lock__isnull=False).values_list("pk", "_dm_lock").first())
    if row is not None:
        lock = active_locks().get(pk=row[1])
        raise refusal(f"{model._meta.verbose_name} #{row[0]}".capitalize(), lock)
    moved = _moved_to(new_values or {})
    if moved:
        lock = active_locks().filter(_lock_q(**moved)).first()
        if lock is not None:
            raise refusal(f"Moving {model._meta.verbose_name_plural}", lock)


def _moved_to(values: dict) -> dict:
    out = {}
    for key in ("subject", "visit"):
        value = values.get(key, values.get(f"{key}_id"))
        value = getattr(value, "pk", value)
        if isinstance(value, int):
            out[key] = value
    if "subject" in out:
        out["trial"] = _trial_of_subject(out["subject"])
    return out


# ---------------------------------------------------------------- consequences

@dataclass
class Watch:
    """What ``before_save`` saw: the row before the write, if anything may depend on it."""

    created: bool
    old: dict | None
    subjects: set
    visits: set


def _attnames(model) -> dict[str, str]:
    return {f.attname: f.name for f in model._meta.concrete_fields
            if f.name not in IGNORED_FIELDS}


def _columns(model) -> list[str]:
    """Columns of a watched row: the data fields plus the subject and visit paths."""
    p = paths(model)
    extra = [x for x in (p.subject, p.visit) if x and x != "pk" and x not in _attnames(model)]
    return [*_attnames(model), *extra]


def _col(model, path: str | None) -> str | None:
    """The column of a path in ``values()`` rows (``pk`` is the primary key's attname)."""
    return model._meta.pk.attname if path == "pk" else path


def _verifications(ct, pk):
    from .models import Verification

    return Verification.objects.filter(state=wf.VERIFIED, content_type=ct, object_id=pk)


def _signatures(subjects, visits):
    from .models import Signature

    subjects, visits = [s for s in subjects if s], [v for v in visits if v]
    return Signature.objects.filter(state=wf.SIGNED).filter(
        Q(level="subject", subject_id__in=subjects) | Q(level="visit", visit_id__in=visits))


#: ``after_bulk_create``'s check of a batch: is one of its subjects or visits signed?
_ANY_SIGNED = PreparedValues(
    lambda shape, *ids: _signatures(ids[:shape[0]], ids[shape[0]:]).order_by().values("pk")[:1])


def _new_record_covered(record, subject_id: int, visits: set) -> bool | None:
    """For a new record of a saved subject: refuse it if an active lock covers it, and whether
    a signature covers it, in one query (a row of the subject with both as subqueries); None
    if the subject row is not there (the caller checks the usual way)."""
    from subjects.models import Subject

    locks = active_locks().filter(_record_lock_q(record)).values("pk")[:1]
    row = Subject._base_manager.filter(pk=subject_id).order_by().annotate(
        _dm_lock=Subquery(locks),
        _dm_signed=Exists(_signatures({subject_id}, visits))).values_list(
        "_dm_lock", "_dm_signed").first()  # unordered: no join for the subjects' ordering
    if row is None:
        return None
    if row[0] is not None:
        raise refusal(_label(record), active_locks().get(pk=row[0]))
    return row[1]


#: Inside :func:`checked_together`: (subject, visits) of new records -> signed, as checked.
_checked: ContextVar[dict | None] = ContextVar("dm_checked_together", default=None)


@contextlib.contextmanager
def checked_together():
    """New records of one subject (and visits) written inside the block share one check of the
    locks and signatures covering them, the first record's (an AE with its episodes and
    attributions: one query, not one per row). For one service's writes of a record and its
    parts, which write no lock or signature in between; the database's lock trigger
    (``lock_trigger``) still refuses every row under a lock."""
    token = _checked.set({})
    try:
        yield
    finally:
        _checked.reset(token)


def before_save(record) -> Watch | None:
    """Refuse writes to locked data; note the row if a verification or signature covers it."""
    model = type(record)
    subjects, visits = {subject_id_of(record)}, {visit_id_of(record)}
    if record._state.adding or record.pk is None:
        subject = next(iter(subjects))
        checked, key = _checked.get(), (subject, frozenset(visits))
        if checked is not None and key in checked:
            return Watch(True, None, subjects, visits) if checked[key] else None
        watched = (None if subject is None or paths(model).subject == "pk"
                   else _new_record_covered(record, subject, visits))
        if checked is not None and watched is not None:
            checked[key] = watched
        if watched is None:
            check_unlocked(record)
            watched = _signatures(subjects, visits).exists()
        return Watch(True, None, subjects, visits) if watched else None
    p = paths(model)
    old = _saved_row_covered(record, subjects, visits)
    if old is None:
        check_unlocked(record)
        return None
    verified, signed = old.pop("_dm_verified"), old.pop("_dm_signed")
    subjects.add(old.get(_col(model, p.subject)))
    if p.visit:
        visits.add(old.get(_col(model, p.visit)))
    return Watch(False, old, subjects, visits) if verified or signed else None


def _saved_row_covered(record, subjects: set, visits: set) -> dict | None:
    """For a change to a saved record: refuse it if an active lock covers the record (as it
    is in memory or in the database), and its row as stored (``_columns``) with whether a
    verification of it, or a signature covering it before or after the change, exists; in
    one query, compiled once per model and shape (``_SAVED_ROW``: every update of a CRF
    record runs it). None if the row is not there (the caller checks the usual way)."""
    model = type(record)
    new_subjects, new_visits = [s for s in subjects if s], [v for v in visits if v]
    rows = _SAVED_ROW.run(
        (model, len(new_subjects), len(new_visits)),
        ContentType.objects.get_for_model(model).pk, record.pk, subject_id_of(record),
        visit_id_of(record), record.trial_id if paths(model).subject == "pk" else None,
        *new_subjects, *new_visits)
    if not rows:
        return None
    row = rows[0]
    lock = row.pop("_dm_lock")
    if lock is not None:
        raise refusal(_label(record), active_locks().get(pk=lock))
    return row


def _saved_row_query(shape, ct_id, pk, subject, visit, trial, *listed):
    """The query of ``_saved_row_covered`` for ``shape`` (model, number of subjects and of
    visits the change may touch), with placeholders for its values."""
    from .models import Signature

    model, n_subjects, _ = shape
    p = paths(model)
    new_subjects, new_visits = list(listed[:n_subjects]), list(listed[n_subjects:])
    # the lock first() would find (the locks' ordering)
    locks = active_locks().filter(
        record_lock_q(model, ct_id, pk, subject, visit, trial, saved=True)).values("pk")[:1]
    covering = (Q(level="subject", subject_id__in=new_subjects)
                | Q(level="visit", visit_id__in=new_visits)
                | Q(level="subject", subject_id=OuterRef(_col(model, p.subject))))
    if p.visit:
        covering |= Q(level="visit", visit_id=OuterRef(_col(model, p.visit)))
    return model._base_manager.filter(pk=pk).order_by().annotate(
        _dm_lock=Subquery(locks), _dm_verified=Exists(_verifications(ct_id, pk)),
        _dm_signed=Exists(Signature.objects.filter(state=wf.SIGNED).filter(covering)),
    ).values(*_columns(model), "_dm_lock", "_dm_verified", "_dm_signed")[:1]


_SAVED_ROW = PreparedValues(_saved_row_query)


def after_save(record, watch: Watch | None) -> None:
    triggers.written(type(record), watch.subjects if watch else {subject_id_of(record)})
    if watch is None:
        return
    model = type(record)
    names = _attnames(model)
    new = model._base_manager.filter(pk=record.pk).values(*names).first() or {}
    if watch.created:
        changes = {}
    else:
        changes = {names[a]: (watch.old.get(a), v) for a, v in new.items()
                   if watch.old.get(a) != v}
        if not changes:
            return
    record_changed(model, record.pk, watch.subjects, watch.visits, changes, watch.created)
    checked = _checked.get()
    if watch.created and checked is not None:  # those signatures are invalidated now
        checked[(next(iter(watch.subjects)), frozenset(watch.visits))] = False


def before_update(queryset, values: dict) -> dict:
    """Refuse a bulk update touching locked data; snapshot the rows that are watched."""
    check_queryset_unlocked(queryset, values)
    model = queryset.model
    p = paths(model)
    if triggers.watched(model):
        triggers.written(model, queryset.values_list(p.subject, flat=True).distinct())
    ct = ContentType.objects.get_for_model(model)
    from .models import Signature, Verification

    watched = model._base_manager.filter(pk__in=queryset.values("pk")).filter(
        Exists(Verification.objects.filter(state=wf.VERIFIED, content_type=ct,
                                           object_id=OuterRef("pk")))
        | Exists(Signature.objects.filter(state=wf.SIGNED).filter(
            Q(level="subject", subject_id=OuterRef(p.subject))
            | (Q(level="visit", visit_id=OuterRef(p.visit)) if p.visit else Q(pk__in=[]))))
    )
    return {row["pk"]: row for row in watched.values("pk", *_columns(model))}


def after_update(model, snapshot: dict) -> None:
    if not snapshot:
        return
    names = _attnames(model)
    p = paths(model)
    for new in model._base_manager.filter(pk__in=list(snapshot)).values("pk", *_columns(model)):
        old = snapshot[new["pk"]]
        changes = {names[a]: (old.get(a), new[a]) for a in names if old.get(a) != new[a]}
        if not changes:
            continue
        subject, visit = _col(model, p.subject), _col(model, p.visit)
        record_changed(model, new["pk"], {new.get(subject), old.get(subject)},
                       {new.get(visit), old.get(visit)}, changes, created=False)


def after_bulk_create(objs) -> None:
    if not objs:
        return
    subjects = {subject_id_of(obj) for obj in objs}
    triggers.written(type(objs[0]), subjects)
    listed = sorted(s for s in subjects if s)
    visits = sorted({v for v in (visit_id_of(obj) for obj in objs) if v})
    if not _ANY_SIGNED.run((len(listed), len(visits)), *listed, *visits):
        return  # one query for the batch; per row only where a signature covers some of it
    for obj in objs:
        if obj.pk is not None:
            watch = Watch(True, None, {subject_id_of(obj)}, {visit_id_of(obj)})
            if _signatures(watch.subjects, watch.visits).exists():
                record_changed(type(obj), obj.pk, watch.subjects, watch.visits, {}, True)


@contextlib.contextmanager
def consequence_context(reason: str):
    """Audit context of a consequence: the change's own reason and user when there is one;
    otherwise (a record added without a reason) a separate context stating ``reason``, so the
    enclosing request's context does not acquire a reason it was never given."""
    if current_reason() is not None:
        yield
        return
    with separate_reason(reason):
        yield


def _describe(changes: dict) -> str:
    return "; ".join(f"{name}: {old} → {new}" for name, (old, new) in changes.items())


def record_changed(model, pk, subjects, visits, changes: dict, created: bool) -> None:
    """Clear the verifications and invalidate the signatures the change falls under."""
    label = f"{model._meta.verbose_name} #{pk}"
    reason = current_reason()
    because = f" (reason for change: {reason})" if reason else ""
    what = f"{label} added" if created else f"{label} changed: {_describe(changes)}"
    actor, now = current_actor(), timezone.now()
    if not created:
        ct = ContentType.objects.get_for_model(model)
        for ver in _verifications(ct, pk).filter(
                Q(field_name="") | Q(field_name__in=list(changes))).select_for_update():
            fields = changes if not ver.field_name else {ver.field_name: changes[ver.field_name]}
            ver.state = wf.clear_verification(ver.state)
            ver.cleared_by_id, ver.cleared_at = actor, now
            ver.cleared_reason = (f"Value changed after verification: {label} "
                                  f"{_describe(fields)}{because}")
            with consequence_context(f"verification cleared: {ver.cleared_reason}"):
                ver.save()
    for sig in _signatures(subjects, visits).select_for_update():
        sig.state = wf.invalidate_signature(sig.state)
        sig.invalidated_by_id, sig.invalidated_at = actor, now
        sig.invalidated_reason = f"Signed data changed after signing: {what}{because}"
        with consequence_context(f"signature invalidated: {sig.invalidated_reason}"):
            sig.save()


def exclude_locked(queryset):
    """``queryset`` without the rows covered by an active freeze or lock."""
    return queryset.filter(~Exists(active_locks().filter(_outer_lock_q(queryset.model))))
