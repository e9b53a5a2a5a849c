"""Status of each form at a glance, and the per-trial data-management counts.

A form's status is a list, in this order, of: ``entered``, ``queried`` (an open or answered
query), ``verified`` / ``verification cleared``, ``signed`` / ``signature invalidated``
(a casebook or visit signature covering it), ``frozen`` / ``locked`` (any lock covering it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q
from django.utils import timezone

from . import workflow as wf
from .models import Lock, Query, Signature, Verification
from .targets import crf_models, label_of, paths, subject_id_of, subject_of, visit_id_of

AGE_BUCKETS = ((0, 7, "0-7"), (8, 30, "8-30"), (31, None, ">30"))


@dataclass
class StatusIndex:
    queried: set = field(default_factory=set)
    verified: set = field(default_factory=set)
    cleared: set = field(default_factory=set)
    verified_fields: dict = field(default_factory=dict)
    signed: set = field(default_factory=set)
    invalidated: set = field(default_factory=set)
    locks: dict = field(default_factory=dict)


def status_index(subject_ids: list[int], trial_ids: set[int]) -> StatusIndex:
    """The queries, verifications, signatures and locks of many subjects, in four queries."""
    ix = StatusIndex()
    for ct, oid in Query.objects.filter(subject_id__in=subject_ids,
                                        state__in=wf.UNRESOLVED_QUERY_STATES
                                        ).values_list("content_type_id", "object_id"):
        ix.queried.add((ct, oid))
    for ct, oid, name, state in Verification.objects.filter(
            subject_id__in=subject_ids).values_list("content_type_id", "object_id",
                                                    "field_name", "state"):
        if state == wf.CLEARED:
            ix.cleared.add((ct, oid))
        elif name:
            ix.verified_fields.setdefault((ct, oid), []).append(name)
        else:
            ix.verified.add((ct, oid))
    for level, subject, visit, state in Signature.objects.filter(
            subject_id__in=subject_ids).values_list("level", "subject_id", "visit_id", "state"):
        key = ("subject", subject) if level == "subject" else ("visit", visit)
        (ix.signed if state == wf.SIGNED else ix.invalidated).add(key)
    locks = Lock.objects.filter(state__in=wf.ACTIVE_LOCK_STATES).filter(
        Q(subject_id__in=subject_ids) | Q(level="trial", trial_id__in=trial_ids))
    for level, ct, oid, subject, visit, trial, state in locks.values_list(
            "level", "content_type_id", "object_id", "subject_id", "visit_id", "trial_id",
            "state"):
        key = {"form": ("form", ct, oid), "visit": ("visit", visit),
               "subject": ("subject", subject), "trial": ("trial", trial)}[level]
        ix.locks.setdefault(key, set()).add(state)
    return ix


def record_status(ix: StatusIndex, ct_id, pk, subject_id, visit_id, trial_id) -> list[str]:
    """The status of one saved record (module docstring) from the index of its subject."""
    key = (ct_id, pk)
    out = ["entered"]
    if key in ix.queried:
        out.append("queried")
    if key in ix.verified:
        out.append("verified")
    elif key in ix.cleared:
        out.append("verification cleared")
    scopes = [("subject", subject_id), ("visit", visit_id)]
    if any(s in ix.signed for s in scopes):
        out.append("signed")
    elif any(s in ix.invalidated for s in scopes):
        out.append("signature invalidated")
    states = set().union(*(ix.locks.get(k, set()) for k in (
        ("form", ct_id, pk), ("visit", visit_id), ("subject", subject_id), ("trial", trial_id))))
    if wf.LOCKED in states:
        out.append("locked")
    elif wf.FROZEN in states:
        out.append("frozen")
    return out


def _trial_id(record) -> int:
    return subject_of(record).trial_id


def form_status(record) -> list[str]:
    """The status of one saved CRF record, e.g. ``["entered", "queried", "locked"]``."""
    subject_id, trial_id = subject_id_of(record), _trial_id(record)
    ix = status_index([subject_id], {trial_id})
    ct = ContentType.objects.get_for_model(record)
    return record_status(ix, ct.pk, record.pk, subject_id, visit_id_of(record), trial_id)


def form_statuses(subject) -> list[dict]:
    """Every CRF record of a subject with its status (the casebook at a glance)."""
    ix = status_index([subject.pk], {subject.trial_id})
    rows = []
    for model in crf_models():
        ct = ContentType.objects.get_for_model(model)
        for record in model.objects.filter(**{paths(model).subject: subject.pk}).order_by("pk"):
            visit_id = visit_id_of(record)
            rows.append({
                "form": label_of(ct), "object_id": record.pk, "label": str(record),
                "visit": visit_id, "retired": record.retired_at is not None,
                "status": record_status(ix, ct.pk, record.pk, subject.pk, visit_id,
                                        subject.trial_id),
                "verified_fields": sorted(ix.verified_fields.get((ct.pk, record.pk), [])),
            })
    return rows


def _age_bucket(opened_at: dt.datetime, now: dt.datetime) -> str:
    days = (now - opened_at).days
    for low, high, label in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return AGE_BUCKETS[0][2]


def trial_data_status(trial) -> dict:
    """Counts of queries, verifications, signatures and locks of one trial (a dashboard)."""
    def counts(model, *by):
        rows = model.objects.filter(trial=trial).values(*by).annotate(n=Count("pk"))
        return {"|".join(str(r[k]) for k in by): r["n"] for r in rows}

    now = timezone.now()
    unresolved = Query.objects.filter(trial=trial, state__in=wf.UNRESOLVED_QUERY_STATES)
    ages = Counter(_age_bucket(at, now) for at in unresolved.values_list("opened_at", flat=True))
    by_site = Counter(unresolved.values_list("site__code", flat=True))
    query_states, lock_states = counts(Query, "state"), counts(Lock, "state")
    verification_states, signature_states = counts(Verification, "state"), counts(
        Signature, "state")
    return {
        "trial": trial.registry_id,
        "queries": {
            **{s: query_states.get(s, 0) for s in wf.QUERY_STATES},
            "unresolved_by_age_days": {label: ages.get(label, 0) for *_, label in AGE_BUCKETS},
            "unresolved_by_site": dict(sorted(by_site.items())),
            "system": unresolved.filter(origin=Query.Origin.SYSTEM).count(),
        },
        "verifications": {s: verification_states.get(s, 0) for s in wf.VERIFICATION_STATES},
        "signatures": {s: signature_states.get(s, 0) for s in wf.SIGNATURE_STATES},
        "locks": {
            **{s: lock_states.get(s, 0) for s in wf.ACTIVE_LOCK_STATES},
            "by_level": {k.replace("|", ":"): v for k, v in counts(Lock, "level", "state").items()
                         if not k.endswith(wf.UNLOCKED)},
            "database_locked": Lock.objects.filter(trial=trial, level="trial",
                                                   state=wf.LOCKED).exists(),
        },
    }
