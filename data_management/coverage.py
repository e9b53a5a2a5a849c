"""Which active freezes and locks cover a record or the rows of a queryset (of itself, its
visit, its subject or its trial): the one query the write guards (``guards``) and the lock
workflow (``locks``) share."""

from __future__ import annotations

import operator
from functools import reduce

from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, Q, Subquery

from . import workflow as wf
from .targets import paths, subject_id_of, visit_id_of


def active_locks():
    from .models import Lock

    return Lock.objects.filter(state__in=wf.ACTIVE_LOCK_STATES).select_related("changed_by")


def _lock_q(ct_id=None, pk=None, visit=None, subject=None, trial=None) -> Q:
    parts = [Q(level="form", content_type_id=ct_id, object_id=pk)] if pk is not None else []
    if visit is not None:
        parts.append(Q(level="visit", visit_id=visit))
    if subject is not None:
        parts.append(Q(level="subject", subject_id=subject))
    if trial is not None:
        parts.append(Q(level="trial", trial_id=trial))
    return reduce(operator.or_, parts) if parts else Q(pk__in=[])


def _outer_lock_q(model) -> Q:
    """Locks covering the row ``OuterRef`` of a queryset of ``model``."""
    p = paths(model)
    ct_id = ContentType.objects.get_for_model(model).pk
    return _lock_q(ct_id, OuterRef("pk"), OuterRef(p.visit) if p.visit else None,
                   OuterRef(p.subject), OuterRef(p.trial))


def _trial_of_subject(subject_id):
    from subjects.models import Subject

    # unordered: the subjects' default ordering would join the trial and site for nothing
    return Subquery(Subject.objects.filter(pk=subject_id).order_by().values("trial_id")[:1])


def _record_lock_q(record) -> Q:
    """Locks covering the record as it is in memory and, if saved, as it is in the database."""
    model = type(record)
    return record_lock_q(model, ContentType.objects.get_for_model(model).pk, record.pk,
                         subject_id_of(record), visit_id_of(record),
                         record.trial_id if paths(model).subject == "pk" else None,
                         saved=record.pk is not None and not record._state.adding)


def record_lock_q(model, ct_id, pk, subject, visit, trial, saved: bool) -> Q:
    """``_record_lock_q`` from the record's values: its content type, id, subject, visit and
    (a subject's) trial; ``saved``: also the locks of the row as stored."""
    p = paths(model)
    if p.subject != "pk":
        trial = _trial_of_subject(subject) if subject is not None else None
    q = _lock_q(ct_id, pk, visit, subject, trial)
    if saved:
        stored = model._base_manager.filter(pk=pk).order_by()  # one row: no ordering

        def db(path):
            return Subquery(stored.values(path)[:1])

        q |= _lock_q(visit=db(p.visit) if p.visit not in (None, "pk") else None,
                     subject=db(p.subject) if p.subject != "pk" else None, trial=db(p.trial))
    return q


def covering_locks(record):
    """The active freezes and locks covering a saved record (form, visit, subject, trial)."""
    return active_locks().filter(_record_lock_q(record))
