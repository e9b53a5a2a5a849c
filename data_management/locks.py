"""Freeze, lock and unlock a form, a visit, a subject or a whole trial (database lock).

ICH E6(R3) 3.16.1 (data are locked before analysis, changes after lock are controlled and
documented) and 21 CFR 11.10(d) (limiting system access): frozen and locked data are
read-only on every write path (``data_management.guards``). Unlocking needs a reason; every
transition is an audited write with its reason and user (``edc.core.audit.history(lock)``).
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from edc.core import roles
from edc.core.audit import change_reason

from . import workflow as wf
from .coverage import covering_locks
from .exceptions import NotPermitted
from .models import Lock, Query
from .targets import target_of

LEVELS = ("form", "visit", "subject", "trial")


def lock_state_of(record) -> str:
    """The strongest active lock state covering a saved CRF record (``unlocked`` if none)."""
    states = set(covering_locks(record).values_list("state", flat=True))
    return wf.LOCKED if wf.LOCKED in states else wf.FROZEN if wf.FROZEN in states else wf.UNLOCKED


def _target(level: str, record) -> dict:
    """Target columns of a lock: the record and the trial/site/subject/visit it covers."""
    from trials.models import Trial

    if level not in LEVELS:
        raise NotPermitted(f"Unknown lock level {level!r}; use one of {', '.join(LEVELS)}.")
    if level == "trial":
        if not isinstance(record, Trial):
            raise NotPermitted("A trial lock targets a trial.")
        return {"trial_id": record.pk, "site_id": None, "subject_id": None, "visit_id": None,
                "content_type": ContentType.objects.get_for_model(Trial),
                "object_id": record.pk, "target_label": f"trial {record.registry_id}"}
    target = target_of(record)
    expected = {"visit": "visits.visit", "subject": "subjects.subject"}.get(level)
    if expected and record._meta.label_lower != expected:
        raise NotPermitted(f"A {level} lock targets a {expected.split('.')[1]}.")
    columns = target.denormalized()
    if level == "subject":
        columns["visit_id"] = None
    return {**columns, "target_label": target.label}


def unresolved_queries(level: str, target: dict) -> int:
    queries = Query.objects.filter(state__in=wf.UNRESOLVED_QUERY_STATES)
    if level == "form":
        queries = queries.filter(content_type=target["content_type"],
                                 object_id=target["object_id"])
    else:
        queries = queries.filter(**{f"{level}_id": target[f"{level}_id"]})
    return queries.count()


def may_manage_locks(user, trial_id: int, level: str) -> bool:
    """Data managers (and admins); a trial lock needs a trial-wide membership."""
    if roles.is_admin(user):
        return True
    if not roles.has_role(user, roles.DATA_MANAGER):
        return False
    from subjects.models import Membership

    memberships = Membership.objects.filter(user=user, trial_id=trial_id)
    if level == "trial":
        memberships = memberships.filter(site__isnull=True)
    return memberships.exists()


@transaction.atomic
def change_lock(user, level: str, record, action: str, reason: str = "") -> tuple[Lock, bool]:
    """Freeze, lock or unlock ``record`` at ``level``; returns the lock and whether it is new.

    Locking is refused while queries on the data are unresolved; unlocking needs a reason.
    """
    target = _target(level, record)
    if not may_manage_locks(user, target["trial_id"], level):
        raise NotPermitted("Only a data manager of this trial (trial-wide for a database lock) "
                           "can freeze, lock or unlock data.")
    lock = (Lock.objects.select_for_update()
            .filter(level=level, content_type=target["content_type"],
                    object_id=target["object_id"]).first())
    state = lock.state if lock else wf.UNLOCKED
    count = unresolved_queries(level, target) if action == "lock" else 0
    new_state = wf.lock_transition(state, action, reason=reason, unresolved_queries=count)
    reason = reason.strip() or f"{level} {action} by data manager"
    with change_reason(f"{action}: {reason}", user):
        if lock is None:
            lock = Lock.objects.create(level=level, state=new_state, reason=reason,
                                       changed_by=user, **target)
            return lock, True
        lock.state, lock.reason = new_state, reason
        lock.changed_by, lock.changed_at = user, timezone.now()
        lock.save()
    return lock, False
