"""The casebook PDF of a subject or of a site (ICH E6(R3) 8.3.14 / 8.4: the completed CRFs
the site archives at close-out).

Per subject: the subject's own form, then every visit with its forms (exposures, QLQ-C30
forms, tumour assessments...), then the forms without a visit (adverse events, their grade
episodes and attributions, dosing periods), each with its status (entered, queried, verified,
signed, frozen / locked: ``data_management.status``); the investigator's signatures; and an
appendix with the subject's audit trail (who, when, old -> new, reason:
``data_management.audit_trail``, the audit explorer's query). Every page carries the subject
id in its header (a CSS ``@page`` margin box fed by ``string-set``); a site's casebook is the
casebooks of its subjects one after the other.

The forms are found, not listed: every CRF model (``data_management.targets.crf_models``), so
new forms appear as they land. What a user reads is what the API and audit explorer show:
only subjects within the user's memberships (``edc.core.roles.scope``); for a user blinded
to the trial the allocation fields and the protocol-definition relations are left out
(``trials.masking.hidden_audit_fields`` / ``audit_rows_hidden``), the arm is ``Blinded``
(``trials.masking.arm_label``), products are shown as the blinded study treatment
(``trials.masking.shown_product``) and product names in free text are masked
(``trials.masking.text_masker``); sponsors read no birth date.

The PDF is made by WeasyPrint (HTML and CSS paged media to PDF) from
``exports/templates/exports/casebook.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.template.loader import render_to_string
from django.utils import timezone

from data_management import audit_trail
from data_management.models import Signature
from data_management.status import record_status, status_index
from data_management.targets import crf_models, paths, visit_id_of
from edc.core import roles
from edc.core.admin import shown_value, user_names
from subjects.models import Subject
from trials import masking
from trials.models import Intervention

#: Columns never printed: keys and bookkeeping (the audit appendix has them).
SKIPPED = frozenset({"id", "created_at", "updated_at", "subject", "visit"})


#: Visit states whose visit, with no form entered, is one line of the planned-visit table.
NOT_HELD = frozenset({"planned", "cancelled"})


@dataclass
class Form:
    """One record: its entered values in pairs of columns, and the fields left empty."""

    title: str
    status: list[str]
    rows: list[tuple[str, str]]
    retired: bool = False

    @property
    def entered(self) -> list[tuple[tuple[str, str], ...]]:
        """The non-empty values, two per table row."""
        values = [row for row in self.rows if row[1] != ""]
        return [tuple(values[i:i + 2]) for i in range(0, len(values), 2)]

    @property
    def empty(self) -> list[str]:
        return [label for label, value in self.rows if value == ""]


@dataclass
class VisitPart:
    title: str
    forms: list[Form] = field(default_factory=list)
    planned: tuple[str, ...] | None = None  # code, kind, target date, window, status


def _planned_row(visit) -> tuple[str, ...]:
    window = (f"{visit.window_low.isoformat()} to {visit.window_high.isoformat()}"
              if visit.window_low and visit.window_high else "")
    return (visit.code, visit.get_kind_display(),
            visit.target_date.isoformat() if visit.target_date else "", window,
            visit.get_status_display())


@dataclass
class SubjectBook:
    subject_id: str
    heading: str
    facts: list[tuple[str, str]]
    visits: list[VisitPart]
    planned: list[tuple[str, ...]]
    other_forms: list[Form]
    signatures: list[dict]
    audit: list[dict]


def shown_id(subject: Subject) -> str:
    """The subject id printed on every page: the subject number, else the screening number."""
    return subject.subject_number or subject.screening_number


#: Shown in place of a protocol-definition relation a blinded user may not read (set or not).
NOT_SHOWN = "(not shown: blinded)"


def _product(record, f, user, subject) -> str:
    """The product of a record (an exposure's, an attribution's, a visit's planned one) as
    ``user`` may see it: a product with a matching placebo is the blinded study treatment."""
    value = getattr(record, f.name)
    code = value.code if isinstance(value, Intervention) else value
    return masking.shown_product(user, subject, code) if code else ""


def _shown(record, f, user, subject, trial, mask) -> str:
    if f.is_relation:
        if masking.audit_rows_hidden(user, f.related_model, trial):
            return NOT_SHOWN
        value = getattr(record, f.name)
        return "" if value is None else mask(str(value))
    value = getattr(record, f"get_{f.name}_display")() if f.choices else getattr(record, f.name)
    value = shown_value(value)
    return "" if value in (None, "") else mask(str(value))


def _form(record, user, subject, trial, mask, status) -> Form:
    """One record's printable fields: the allocation fields of a blinded user's record are
    left out, except its product, shown masked (``trials.masking.shown_product``)."""
    model = type(record)
    hidden = masking.hidden_audit_fields(user, model, trial)
    parent = paths(model).parent
    rows = []
    for f in model._meta.concrete_fields:
        if f.name in SKIPPED or f.name == parent:
            continue
        if not f.is_relation and not f.editable and f.name != "retired_at":
            continue
        label = str(f.verbose_name).capitalize()
        if f.related_model is Intervention or (f.name == "intervention" and not f.is_relation):
            rows.append((label, _product(record, f, user, subject)))
        elif f.attname not in hidden:
            rows.append((label, _shown(record, f, user, subject, trial, mask)))
    title = f"{str(model._meta.verbose_name).capitalize()}: {mask(str(record))}"
    return Form(title, status, rows, retired=getattr(record, "retired_at", None) is not None)


def subject_book(subject: Subject, user) -> SubjectBook:
    """Every form of ``subject`` as ``user`` may read it (the caller has scoped the subject)."""
    trial = subject.trial
    mask = masking.text_masker(user, subject)
    ix = status_index([subject.pk], {trial.pk})
    visits = {v.pk: VisitPart(f"Visit {v.code}: {v.get_status_display()}"
                              + (f", {v.actual_date.isoformat()}" if v.actual_date else ""),
                              planned=_planned_row(v) if v.status in NOT_HELD else None)
              for v in subject.visits.order_by("target_date", "code", "pk")}
    other: list[Form] = []
    subject_form = None  # the Subject model comes first (crf_models)
    for model in crf_models():
        ct = ContentType.objects.get_for_model(model)
        lookups = paths(model)
        for record in model._default_manager.filter(**{lookups.subject: subject.pk}
                                                    ).order_by("pk"):
            visit_id = visit_id_of(record)
            status = record_status(ix, ct.pk, record.pk, subject.pk, visit_id, trial.pk)
            form = _form(record, user, subject, trial, mask, status)
            if isinstance(record, Subject):
                subject_form = form
            elif visit_id in visits:
                visits[visit_id].forms.append(form)
            else:
                other.append(form)
    names = user_names(Signature.objects.filter(subject=subject)
                       .values_list("signed_by_id", flat=True))
    signatures = [{"level": s.get_level_display(), "visit": s.visit.code if s.visit else "",
                   "state": s.get_state_display(), "manifestation": s.manifestation,
                   "signed_by": names.get(s.signed_by_id, "")}
                  for s in Signature.objects.filter(subject=subject).select_related("visit")
                  .order_by("signed_at", "pk")]
    shown = shown_id(subject)
    arm = masking.arm_label(user, subject)
    facts = [("Trial", f"{trial.registry_id}: {trial.title}"),
             ("Site", f"{subject.site.code}: {subject.site.name}"),
             ("Subject", shown), ("Screening number", subject.screening_number),
             ("Status", subject.get_status_display()),
             ("Allocation", arm or "not allocated")]
    held = [v for v in visits.values() if v.planned is None or len(v.forms) > 1]
    return SubjectBook(
        subject_id=shown, heading=f"Casebook of subject {shown}", facts=facts,
        visits=[VisitPart("Subject: screening, consent, enrolment", [subject_form]), *held],
        planned=[v.planned for v in visits.values() if v not in held],
        other_forms=other, signatures=signatures, audit=audit_rows(subject, user))


def audit_rows(subject: Subject, user) -> list[dict]:
    """The subject's audit trail, oldest first (the audit explorer's rows)."""
    trial = subject.trial
    rows = audit_trail.events_of(trial, user, audit_trail.Filters(subject=subject.pk),
                                 newest_first=False)
    if rows is None:
        return []
    reader = audit_trail.Reader(user, trial)
    read = [reader.row(raw) for raw in rows.iterator(chunk_size=500)]
    names = user_names({r["user"] for r in read})
    return [{**r, "who": names.get(r["user"]) or r["username"] or "system",
             "record": f"{r['record_type']} #{r['record_id']}",
             "changes": {name: (old, new) for name, (old, new) in r["changes"].items()
                         if old is not None or new not in (None, "")}}  # inserts: set values
            for r in read]


def subjects_of_site(site, user):
    """The subjects of ``site`` within the user's memberships, in subject-id order."""
    return roles.scope(Subject.objects.filter(site=site), user).select_related(
        "trial", "site", "arm").order_by("subject_number", "screening_number", "pk")


def render_pdf(books: list[SubjectBook], title: str, user) -> bytes:
    """The casebook as PDF bytes (WeasyPrint)."""
    from weasyprint import HTML  # heavy (Pango through cffi): loaded in the worker only

    html = render_to_string("exports/casebook.html", {
        "books": books, "title": title, "requested_by": user.get_username(),
        "generated_at": timezone.now()})
    return HTML(string=html).write_pdf()
