"""The trial-wide audit trail (21 CFR 11.10(e); ICH E6(R3) 4.2.3): every audit event of the
records of one trial, newest first, with who, when (UTC), the reason for change and each
changed value (old -> new), filtered by user, subject, record type, site, date range and
reason text; also as CSV (one line per changed value; cells defused against formula injection).

The rows are the pghistory events of every audited model (``edc.core.audit``; one per INSERT
and UPDATE, written by database triggers) whose record belongs to a trial: directly (a
``trial``, ``site`` or ``subject`` relation, the CRF paths of ``data_management.targets``) or
through one parent (a query's message, a protocol version's arm). A page is one UNION over
the event tables ordering the events' keys, then the page's events read with the previous
event of the same record (for the old values); the export streams one UNION of the events in
detail; memory stays flat in rows.

Scoped and blinded like every other view: rows of records the user's memberships do not reach
are left out (``edc.core.roles.scope``); for a user blinded to the trial the protocol
definition and the allocation records are left out (``trials.masking.audit_rows_hidden``), the
allocation fields are removed from every row and product names are masked in values and
reasons (``trials.masking``); the events of the records ``trials.masking.hidden_records`` names
(an allocation-revealing source document) are left out too; sponsors read no birth date.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import (
    CharField,
    F,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, JSONObject, NullIf

from edc.core import roles
from edc.core.admin import shown_value
from edc.core.audit import AuditEvent
from subjects.models import Site, Subject
from trials import masking
from trials.models import Trial

from .targets import paths

PAGE_SIZE = 100
#: Bookkeeping columns never listed as changes.
NOISE = frozenset({"updated_at", "created_at"})
#: What orders the events: time, record type, event id (prefixed: event tables have fields
#: named like the columns).
KEYS = ("audit_at", "audit_record_type", "audit_event_id")
#: The columns of an event read in detail.
COLUMNS = tuple(f"audit_{name}" for name in (
    "at", "event_id", "event", "record_type", "record_id", "subject_id", "subject", "site",
    "context", "snapshot", "previous"))
CSV_HEADER = ("at_utc", "event", "record_type", "record_id", "subject", "site", "user_id",
              "username", "reason", "field", "old", "new")
FILTERS = ("user", "subject", "record_type", "site", "date_from", "date_to", "reason")


@dataclass(frozen=True)
class Source:
    """An audited model of trial records: its event table and the lookups from the record to
    its trial, site and subject (None where it has none; ``pk`` for the record itself)."""

    model: type
    events: type
    trial: str
    site: str | None
    subject: str | None

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def name(self) -> str:
        return str(self.model._meta.verbose_name)


def _relation(model, name: str):
    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return field.related_model if field.concrete and field.is_relation else None


def _strip(path: str | None) -> str | None:
    """A lookup ending in an ``_id`` attname as the relation (``subject__trial_id`` ->
    ``subject__trial``)."""
    if path is None or path == "pk":
        return path
    return path[:-3] if path.endswith("_id") else path


def _direct(model) -> tuple | None:
    if model is Trial:
        return "pk", None, None
    if model is Site:
        return "trial", "pk", None
    crf = paths(model)
    if crf is not None:
        return _strip(crf.trial), _strip(crf.site), _strip(crf.subject)
    if _relation(model, "trial") is not Trial:
        return None
    return ("trial", "site" if _relation(model, "site") is Site else None,
            "subject" if _relation(model, "subject") is Subject else None)


def _lookups(model) -> tuple | None:
    """``(trial, site, subject)`` lookups of ``model``: its own, else through its first
    relation to a model that has them."""
    found = _direct(model)
    if found is not None:
        return found
    for field in model._meta.concrete_fields:
        parent = field.related_model if field.many_to_one else None
        hop = _direct(parent) if parent is not None else None
        if hop is not None:
            return tuple(None if p is None else field.name if p == "pk" else
                         f"{field.name}__{p}" for p in hop)
    return None


@functools.cache
def sources() -> tuple[Source, ...]:
    """Every audited model whose records belong to a trial, by label."""
    found = []
    for events in apps.get_models():
        if not issubclass(events, AuditEvent) or events.pgh_tracked_model is None:
            continue
        model = events.pgh_tracked_model
        lookups = _lookups(model)
        if lookups is not None:
            found.append(Source(model, events, *lookups))
    return tuple(sorted(found, key=lambda s: s.label))


def visible_sources(user, trial) -> list[Source]:
    """The sources whose rows ``user`` may read in ``trial`` (blinding)."""
    return [s for s in sources() if not masking.audit_rows_hidden(user, s.model, trial)]


def _on_record(path: str | None) -> str | None:
    """The lookup from an event row through its record (``pgh_obj``)."""
    if path is None:
        return None
    return "pgh_obj" if path == "pk" else f"pgh_obj__{path}"


def _data_fields(events) -> list[str]:
    return [f.attname for f in events._meta.fields if not f.attname.startswith("pgh_")]


def _snapshot(names: list[str]):
    """The row as a JSON object (chunks of 40 keys joined by ``||``: a function takes at
    most 100 arguments in PostgreSQL)."""
    parts = [JSONObject(**{name: F(name) for name in names[i:i + 40]})
             for i in range(0, len(names), 40)]
    if len(parts) == 1:
        return parts[0]
    return Func(*parts, template="(%(expressions)s)", arg_joiner=" || ",
                output_field=JSONField())


@dataclass(frozen=True)
class Filters:
    """Validated filters (``parse_filters``)."""

    user: str = ""
    subject: int | None = None
    record_type: str = ""
    site: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    reason: str = ""


def _date(params, name: str) -> dt.date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError({name: f"{value[:40]!r} is not a date (YYYY-MM-DD)"}) from None


def _text(params, name: str, limit: int) -> str:
    """A free-text filter, refused (400) with a NUL character: PostgreSQL stores no NUL in
    text or JSON, so no record can match it."""
    value = (params.get(name) or "").strip()[:limit]
    if "\x00" in value:
        raise ValidationError({name: "a NUL character cannot appear in any record"})
    return value


def parse_filters(params, user, trial) -> Filters:
    """The filters of a query string, each checked against what the user may see of the
    trial: a 400 naming the parameter for an unknown subject, site, record type or date."""
    subject = (params.get("subject") or "").strip()
    if subject:
        found = roles.scope(Subject.objects.filter(trial=trial), user).filter(
            pk=subject if subject.isdigit() and len(subject) < 19 else None).first()
        if found is None:
            raise ValidationError({"subject": f"no subject {subject[:40]!r} of this trial "
                                              "among yours"})
    site = (params.get("site") or "").strip()
    if site:
        found = roles.scope(Site.objects.filter(trial=trial), user, site="pk").filter(
            pk=site if site.isdigit() and len(site) < 19 else None).first()
        if found is None:
            raise ValidationError({"site": f"no site {site[:40]!r} of this trial among yours"})
    record_type = (params.get("record_type") or "").strip().lower()
    if record_type and record_type not in {s.label for s in visible_sources(user, trial)}:
        raise ValidationError({"record_type": f"{record_type[:60]!r} is not a record type "
                                              "of this audit trail"})
    date_from, date_to = _date(params, "date_from"), _date(params, "date_to")
    if date_from and date_to and date_from > date_to:
        raise ValidationError({"date_to": "the range ends before it starts"})
    return Filters(user=_text(params, "user", 150),
                   subject=int(subject) if subject else None, record_type=record_type,
                   site=int(site) if site else None, date_from=date_from, date_to=date_to,
                   reason=_text(params, "reason", 200))


def _scoped(source: Source, user, trial, f: Filters):
    """The events of one source for the trial, scoped and filtered."""
    events = source.events
    trial_path = _on_record(source.trial)
    site_path, subject_path = _on_record(source.site), _on_record(source.subject)
    rows = roles.scope(events.objects.filter(**{trial_path: trial.pk}), user,
                       trial=trial_path, site=site_path)
    hidden = masking.hidden_records(source.model)
    if hidden and roles.blinded_to(user, trial):  # e.g. an allocation-revealing document
        rows = rows.exclude(**{f"pgh_obj__{name}": value for name, value in hidden.items()})
    if f.subject is not None:
        rows = rows.filter(**{subject_path: f.subject})
    if f.site is not None:
        rows = rows.filter(**{site_path: f.site})
    if f.user:
        by = Q(pgh_context__username=f.user)
        if f.user.isdigit() and len(f.user) < 19:
            by |= Q(pgh_context__user=int(f.user))
        rows = rows.filter(by)
    if f.reason:
        rows = rows.filter(pgh_context__reason__icontains=f.reason)
    if f.date_from:
        rows = rows.filter(pgh_created_at__date__gte=f.date_from)
    if f.date_to:
        rows = rows.filter(pgh_created_at__date__lte=f.date_to)
    return rows


def _keys(source: Source, rows):
    """What orders and identifies an event (``KEYS``): cheap to sort over every event."""
    return rows.annotate(audit_at=F("pgh_created_at"), audit_event_id=F("pgh_id"),
                         audit_record_type=Value(source.label, CharField())).values(*KEYS)


def _detailed(source: Source, rows):
    """The events as ``COLUMNS``: with their record's subject and site, the row and the
    previous row of the same record (for the old values)."""
    events = source.events
    site_path, subject_path = _on_record(source.site), _on_record(source.subject)
    names = _data_fields(events)
    previous = events.objects.filter(pgh_obj_id=OuterRef("pgh_obj_id"),
                                     pgh_id__lt=OuterRef("pgh_id")).order_by("-pgh_id")
    none_text, none_int = Value(None, CharField()), Value(None, IntegerField())
    subject = (Coalesce(NullIf(F(f"{subject_path}__subject_number"), Value("")),
                        F(f"{subject_path}__screening_number")) if subject_path else none_text)
    return rows.annotate(
        audit_at=F("pgh_created_at"), audit_event_id=F("pgh_id"), audit_event=F("pgh_label"),
        audit_record_type=Value(source.label, CharField()), audit_record_id=F("pgh_obj_id"),
        audit_subject_id=F(subject_path) if subject_path else none_int, audit_subject=subject,
        audit_site=F(f"{site_path}__code") if site_path else none_text,
        audit_context=F("pgh_context"), audit_snapshot=_snapshot(names),
        audit_previous=Subquery(previous.annotate(audit_row=_snapshot(names))
                                .values("audit_row")[:1]),
    ).values(*COLUMNS)


def events_of(trial, user, f: Filters, *, newest_first: bool = True, keys_only: bool = False):
    """The audit events of ``trial`` the user may read, as one (UNION) queryset of
    ``COLUMNS`` (``KEYS`` only with ``keys_only``), or None when the filters leave no record
    type."""
    chosen = [s for s in visible_sources(user, trial)
              if (not f.record_type or s.label == f.record_type)
              and (f.subject is None or s.subject is not None)
              and (f.site is None or s.site is not None)]
    if not chosen:
        return None
    shape = _keys if keys_only else _detailed
    first, *others = [shape(s, _scoped(s, user, trial, f)) for s in chosen]
    union = first.union(*others, all=True) if others else first
    sign = "-" if newest_first else ""
    return union.order_by(f"{sign}audit_at", "audit_record_type", f"{sign}audit_event_id")


class Reader:
    """Turns event rows into what the user may read: hidden fields removed, products masked
    for a blinded user, values formatted (``edc.core.admin.shown_value``)."""

    def __init__(self, user, trial):
        self.user, self.trial = user, trial
        self.blinded = roles.blinded_to(user, trial)
        self.models = {s.label: s.model for s in sources()}
        self._hidden: dict[str, set[str]] = {}
        self._mask = None

    def hidden(self, label: str) -> set[str]:
        if label not in self._hidden:
            self._hidden[label] = set(masking.hidden_audit_fields(
                self.user, self.models[label], self.trial)) | NOISE
        return self._hidden[label]

    def mask(self, value):
        if not self.blinded or not isinstance(value, str):
            return value
        if self._mask is None:
            maskers = [masking.product_masker(pk)
                       for pk in self.trial.versions.values_list("pk", flat=True)]
            self._mask = lambda text: functools.reduce(lambda t, m: m(t), maskers, text)
        return self._mask(value)

    def row(self, raw: dict) -> dict:
        raw = {name.removeprefix("audit_"): value for name, value in raw.items()}
        hidden = self.hidden(raw["record_type"])
        new, old = raw["snapshot"] or {}, raw["previous"]
        changes = {name: [None if old is None else self.mask(shown_value(old.get(name))),
                          self.mask(shown_value(value))]
                   for name, value in new.items()
                   if name not in hidden and (old is None or old.get(name) != value)}
        context = raw["context"] or {}
        return {"at": raw["at"], "event": raw["event"], "record_type": raw["record_type"],
                "record_id": raw["record_id"], "subject_id": raw["subject_id"],
                "subject": raw["subject"], "site": raw["site"], "user": context.get("user"),
                "username": context.get("username"),
                "reason": self.mask(context.get("reason")), "changes": changes}


def page(trial, user, f: Filters, number: int = 1) -> dict:
    """One page (``PAGE_SIZE`` events, newest first) and the count of every event: the
    events are ordered by their keys, and only the page's events are read in detail."""
    keys = events_of(trial, user, f, keys_only=True)
    count = keys.count() if keys is not None else 0
    pages = max(1, -(-count // PAGE_SIZE))
    if number < 1 or number > pages:
        raise ValidationError({"page": f"pages run from 1 to {pages}"})
    shown = list(keys[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]) if keys is not None else []
    by_type = defaultdict(list)
    for key in shown:
        by_type[key["audit_record_type"]].append(key["audit_event_id"])
    found = {}
    for source in sources():
        if source.label in by_type:
            rows = source.events.objects.filter(pgh_id__in=by_type[source.label])
            found |= {(raw["audit_record_type"], raw["audit_event_id"]): raw
                      for raw in _detailed(source, rows)}
    reader = Reader(user, trial)
    return {"trial": trial.registry_id, "count": count, "page": number, "pages": pages,
            "results": [reader.row(found[(k["audit_record_type"], k["audit_event_id"])])
                        for k in shown]}


def csv_lines(trial, user, f: Filters) -> Iterator[tuple]:
    """Every event, oldest first, as ``CSV_HEADER`` lines: one per changed value (an event
    without a visible change is one line without a field)."""
    yield CSV_HEADER
    rows = events_of(trial, user, f, newest_first=False)
    if rows is None:
        return
    reader = Reader(user, trial)
    for raw in rows.iterator(chunk_size=500):
        row = reader.row(raw)
        head = (row["at"].astimezone(dt.UTC).isoformat(), row["event"], row["record_type"],
                row["record_id"], row["subject"] or "", row["site"] or "",
                row["user"] if row["user"] is not None else "", row["username"] or "",
                row["reason"] or "")
        if not row["changes"]:
            yield (*head, "", "", "")
        for name, (old, new) in row["changes"].items():
            yield (*head, name, "" if old is None else old, "" if new is None else new)
