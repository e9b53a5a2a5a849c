"""Protocol deviations: reported by users or raised by a rule, each with a query for the monitor.

A rule (e.g. the dose checks of ``visits.dose_checks``) reports what it finds on a record with
:func:`sync_rule_deviations`: a new finding opens a deviation and a system query on the record
(in the caller's transaction, so the record is never saved without them); a finding that is
gone after a correction resolves its deviation, with the reason, and the query stays for the
monitor to close (ICH E6(R3) 3.16.1: the monitor reviews the correction). Deviations are never
deleted (``edc.core.audit``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from edc.core.audit import change_reason

from . import workflow as wf
from .models import ProtocolDeviation, Query
from .queries import open_query
from .targets import target_of

#: The query text says nothing of the product or the arm (it is shown to blinded users).
QUERY_TEXT = ("Protocol deviation #{pk} ({category}) recorded on this record: please confirm "
              "the values against source or correct them with a reason.")


@dataclass(frozen=True)
class RuleFinding:
    check_code: str
    category: str
    description: str


def _open(record, category: str, description: str, occurred_on: dt.date, user, check_code):
    target = target_of(record, "")
    deviation = ProtocolDeviation.objects.create(
        **target.denormalized(), target_label=target.label, category=category,
        description=description, occurred_on=occurred_on, check_code=check_code,
        reported_by=user)
    text = QUERY_TEXT.format(pk=deviation.pk, category=deviation.get_category_display())
    code = check_code or f"deviation-{deviation.pk}"
    query = Query.objects.filter(
        origin=Query.Origin.SYSTEM, check_code=code, content_type=target.content_type,
        object_id=record.pk, field_name="", state__in=wf.UNRESOLVED_QUERY_STATES).first()
    if query is None:  # else the monitor's query on the same rule is still unresolved
        query = open_query(record, text, None, check_code=code,
                           check_value=f"deviation:{deviation.pk}")
    with change_reason(f"query #{query.pk} opened for deviation #{deviation.pk}", user):
        deviation.query = query
        deviation.save(update_fields=["query", "updated_at"])
    return deviation


@transaction.atomic
def report_deviation(record, category: str, description: str, user,
                     occurred_on: dt.date | None = None) -> ProtocolDeviation:
    """A deviation reported by a user (e.g. an eligibility waiver, a missed assessment)."""
    if category not in ProtocolDeviation.Category.values:
        raise ValidationError({"category": f"unknown category {category!r}"})
    if not (description or "").strip():
        raise ValidationError({"description": "A deviation needs a description."})
    return _open(record, category, description.strip(), occurred_on or timezone.localdate(),
                 user, "")


def resolve(deviation: ProtocolDeviation, resolution: str, user=None) -> ProtocolDeviation:
    if not (resolution or "").strip():
        raise ValidationError({"resolution": "Say why the deviation is resolved."})
    if deviation.state != ProtocolDeviation.State.OPEN:
        raise ValidationError({"state": f"deviation #{deviation.pk} is {deviation.state}"})
    with change_reason(f"deviation #{deviation.pk} resolved: {resolution.strip()}", user):
        deviation.state = ProtocolDeviation.State.RESOLVED
        deviation.resolved_by = user
        deviation.resolved_at = timezone.now()
        deviation.resolution = resolution.strip()
        deviation.save()
    return deviation


@transaction.atomic
def sync_rule_deviations(record, codes: Iterable[str], findings: Iterable[RuleFinding],
                         occurred_on: dt.date, user=None,
                         resolution: str = "") -> list[ProtocolDeviation]:
    """Make the open deviations of ``record`` for the rule ``codes`` match ``findings``.

    Returns the deviations newly opened. A finding already open keeps its deviation (its
    description updated when the values changed); an open one not found any more is resolved
    with ``resolution`` (default: the corrected record is within the protocol)."""
    target = target_of(record, "")
    open_ = {d.check_code: d for d in ProtocolDeviation.objects.select_for_update().filter(
        content_type=target.content_type, object_id=record.pk, check_code__in=list(codes),
        state=ProtocolDeviation.State.OPEN)}
    opened = []
    found = set()
    for finding in findings:
        found.add(finding.check_code)
        current = open_.get(finding.check_code)
        if current is None:
            opened.append(_open(record, finding.category, finding.description, occurred_on,
                                user, finding.check_code))
        elif current.description != finding.description:
            with change_reason("deviation re-checked after a correction", user):
                current.description = finding.description
                current.save(update_fields=["description", "updated_at"])
    for code, deviation in open_.items():
        if code not in found:
            resolve(deviation, resolution or "corrected: the record is within the protocol",
                    user)
    return opened
