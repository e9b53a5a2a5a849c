"""Queries on a record or one of its fields: open, answer (optionally correcting the value),
close, re-open. The states follow ``data_management.workflow``.

ICH E6(R3) 3.16.1 and 2.12: data corrections are attributable, dated, explained and do not
obscure the original entry. A correction made while answering is saved with the answer as its
reason for change, so the audit trail of the record (``edc.core.audit.history``) shows the old and
new value, who changed it, when and why.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from edc.core import roles
from edc.core.audit import change_reason

from . import workflow as wf
from .exceptions import NotPermitted
from .locks import lock_state_of
from .models import Query, QueryMessage
from .targets import target_of

UNSET = object()


def _refuse_if_locked(record, action: str) -> None:
    if lock_state_of(record) == wf.LOCKED:
        raise wf.IllegalTransition(f"Locked data cannot be {action}; it is final.")


def open_query(record, text: str, user=None, field_name: str = "", *, check_code: str = "",
               check_value: str = "") -> Query:
    """Open a query (``user`` None: a system query raised by an edit check)."""
    if not (text or "").strip():
        raise ValidationError({"text": "A query needs a text."})
    target = target_of(record, field_name)
    _refuse_if_locked(record, "queried")
    with transaction.atomic():
        query = Query.objects.create(
            **target.denormalized(), field_name=field_name, target_label=target.label,
            text=text.strip(), opened_by=user, check_code=check_code, check_value=check_value,
            origin=Query.Origin.MANUAL if user is not None else Query.Origin.SYSTEM,
        )
        QueryMessage.objects.create(query=query, action="open", text=query.text, author=user)
    return query


def open_system_query(record, field_name: str, check_code: str, check_value: str,
                      text: str) -> Query | None:
    """Open an edit-check query unless one is unresolved for the same check and target, or a
    closed one already accepted the same values (idempotent: safe to run again)."""
    target = target_of(record, field_name)
    same = Query.objects.filter(check_code=check_code, content_type=target.content_type,
                                object_id=record.pk, field_name=field_name)
    if same.filter(state__in=wf.UNRESOLVED_QUERY_STATES).exists():
        return None
    if same.filter(state=wf.CLOSED, check_value=check_value, closed_by__isnull=False).exists():
        return None  # a person closed it: these values were accepted
    if lock_state_of(record) == wf.LOCKED:
        return None
    try:
        with transaction.atomic():
            return open_query(record, text, None, field_name, check_code=check_code,
                              check_value=check_value)
    except IntegrityError:  # a concurrent run opened it first
        return None


def close_system_query(query: Query) -> Query | None:
    """Close an edit-check query whose finding no longer holds (the check itself closes it:
    ``closed_by`` empty); None when locked data keeps it as it is."""
    with transaction.atomic():
        query = _locked_query(query)
        if query.state == wf.CLOSED or lock_state_of(query.record) == wf.LOCKED:
            return None
        text = "Resolved: the edit check no longer finds the problem."
        with change_reason(f"query #{query.pk} closed by its edit check", None):
            query.state = wf.query_transition(query.state, "close")
            query.closed_by, query.closed_at = None, timezone.now()
            query.save()
            QueryMessage.objects.create(query=query, action="close", text=text, author=None)
    return query


def _locked_query(query: Query) -> Query:
    return Query.objects.select_for_update().get(pk=query.pk)


def _correct(query: Query, value) -> None:
    """Set the queried field to ``value`` (validated by the model field) with ``text`` as the
    reason for change."""
    if not query.field_name:
        raise ValidationError({"value": "This query is on a whole record; correct the form "
                                        "itself, then answer."})
    record = query.record
    field = record._meta.get_field(query.field_name)
    if not field.editable:
        raise ValidationError({"value": f"{query.field_name} is computed and cannot be set."})
    if field.is_relation or field.name in record.workflow_fields:
        raise ValidationError({"value": (
            f"{query.field_name} is set by the study workflow (enrollment, status changes, "
            f"visit or exposure recording), not corrected in place: use that action, then "
            f"answer the query.")})
    try:
        cleaned = field.clean(value, record)
    except ValidationError as exc:
        raise ValidationError({"value": exc.messages}) from None
    setattr(record, field.attname, cleaned)
    try:
        record.derive()
    except ValueError as exc:
        raise ValidationError({"value": str(exc)}) from None
    record.save()
    record.on_corrected()


@transaction.atomic
def answer_query(query: Query, text: str, user, value=UNSET) -> Query:
    """Site staff answer; with ``value`` the queried field is corrected in the same step."""
    if not roles.can_enter_data(user):
        raise NotPermitted("Only site staff and investigators answer queries.")
    query = _locked_query(query)
    new_state = wf.query_transition(query.state, "answer", text=text)
    _refuse_if_locked(query.record, "queried or answered")
    with change_reason(f"query #{query.pk} answered: {text.strip()}", user):
        if value is not UNSET:
            _correct(query, value)
        query.state, query.answer = new_state, text.strip()
        query.answered_by, query.answered_at = user, timezone.now()
        query.save()
        QueryMessage.objects.create(query=query, action="answer", text=text.strip(), author=user)
    return query


def may_close(query: Query, user) -> bool:
    """The opener closes or re-opens; system queries by any monitor or data manager."""
    if roles.is_admin(user):
        return True
    if query.opened_by_id is not None:
        return query.opened_by_id == user.pk
    return roles.has_role(user, roles.MONITOR, roles.DATA_MANAGER)


def _close_or_reopen(query: Query, user, action: str, text: str) -> Query:
    query = _locked_query(query)
    if not may_close(query, user):
        raise NotPermitted(f"Only the person who opened this query can {action} it.")
    new_state = wf.query_transition(query.state, action, text=text)
    if action == "reopen":
        _refuse_if_locked(query.record, "queried")
    note = text.strip() or f"query {action}d"
    with change_reason(f"query #{query.pk} {'closed' if action == 'close' else 're-opened'}: "
                       f"{note}", user):
        query.state = new_state
        if action == "close":
            query.closed_by, query.closed_at = user, timezone.now()
        else:
            query.opened_at, query.closed_by, query.closed_at = timezone.now(), None, None
        query.save()
        QueryMessage.objects.create(query=query, action=action, text=text.strip(), author=user)
    return query


@transaction.atomic
def close_query(query: Query, user, text: str = "") -> Query:
    return _close_or_reopen(query, user, "close", text)


@transaction.atomic
def reopen_query(query: Query, user, text: str) -> Query:
    return _close_or_reopen(query, user, "reopen", text)
