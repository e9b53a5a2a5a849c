"""The subject x visit status matrix of a trial (REDCap's record status dashboard,
OpenClinica's subject matrix): for every subject the user reaches and every visit of the
schedule, the status of each form the visit expects or holds.

A form's status, in this order:

* ``due``: expected (``visits.expected_forms``) and not entered, the visit still ahead or
  inside its window;
* ``missing``: expected and not entered at a visit that is overdue
  (``Visit.objects.overdue()``, the one definition) or was done without it;
* ``entered``, ``queried``, ``verified``, ``signed``, ``frozen``/``locked`` (and
  ``verification cleared``, ``signature invalidated``): ``data_management.status`` of the
  saved record(s). Where a visit holds several records of a form, ``verified``, ``signed``,
  ``frozen`` and ``locked`` hold only when every record has them, the others when any has.

A visit's own record is entered once the visit is recorded (done, missed or not done); a
missed visit expects nothing more. Forms without a visit (adverse events, eligibility
answers, dosing periods) are counted per subject. Retired records and subjects are left out.
Nothing here shows an arm or a product: a blinded user reads the same matrix as anyone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone

from edc.core import roles
from subjects.models import Site, Subject
from visits.expected_forms import VISIT, expected_forms
from visits.models import Visit

from .status import record_status, status_index
from .targets import SUBJECT_LABEL, crf_models, paths

STATUSES = ("due", "missing", "entered", "queried", "verified", "verification cleared",
            "signed", "signature invalidated", "frozen", "locked")
#: Statuses a cell of several records has only when every record has them.
EVERY_RECORD = frozenset({"entered", "verified", "signed", "frozen", "locked"})
PAGE_SIZE = 100


def combined(statuses: list[list[str]]) -> list[str]:
    """The status of a cell holding the records whose statuses are given (module rule)."""
    return [s for s in STATUSES
            if (all if s in EVERY_RECORD else any)(s in one for one in statuses)]


def site_of(trial, user, site_id) -> Site | None:
    """The site filter: one of the trial's sites the user reaches, else a 400 naming it."""
    if site_id in (None, ""):
        return None
    site = roles.scope(Site.objects.filter(trial=trial), user, site="pk").filter(
        pk=site_id if str(site_id).isdigit() else None).first()
    if site is None:
        raise ValidationError({"site": f"no site {site_id!r} of this trial among yours"})
    return site


def _records(ids: list[int]) -> dict[tuple, list[tuple[int, int]]]:
    """``{(subject id, visit id or None, form label): [(content type id, pk), ...]}`` of the
    saved, not retired CRF records of the subjects (one query per CRF model)."""
    found: dict[tuple, list] = defaultdict(list)
    for model in crf_models():
        p = paths(model)
        label = model._meta.label_lower
        if p.parent or label in (SUBJECT_LABEL, VISIT):
            continue  # children count with their parent; subjects and visits are rows/columns
        ct_id = ContentType.objects.get_for_model(model).pk
        rows = model.objects.filter(**{f"{p.subject}__in": ids, "retired_at__isnull": True})
        for pk, subject_id, visit_id in rows.values_list("pk", p.subject, p.visit or "pk"):
            found[(subject_id, visit_id if p.visit else None, label)].append((ct_id, pk))
    return found


def _form_names() -> dict[str, str]:
    return {m._meta.label_lower: str(m._meta.verbose_name) for m in crf_models()}


def _columns(visits: list[Visit], day0: dict[int, dt.date | None]) -> list[str]:
    """Visit codes in schedule order: by the earliest study day any subject has them on."""
    first: dict[str, int | None] = {}
    for visit in visits:
        start = day0.get(visit.subject_id)
        offset = (visit.target_date - start).days if visit.target_date and start else None
        if visit.code not in first or (offset is not None and (
                first[visit.code] is None or offset < first[visit.code])):
            first[visit.code] = offset
    return sorted(first, key=lambda code: (first[code] is None, first[code] or 0, code))


def _visit_cell(visit: Visit, records, ix, ct_visit: int, trial_id: int, names) -> dict:
    subject_id = visit.subject_id
    forms = []
    held = {label for (s, v, label) in records if s == subject_id and v == visit.pk}
    for label in (*expected_forms(visit), *sorted(held - set(expected_forms(visit)))):
        if label == VISIT:
            pks = [visit.pk] if visit.status != Visit.Status.PLANNED else []
            keys = [(ct_visit, visit.pk)] if pks else []
        else:
            keys = records.get((subject_id, visit.pk, label), [])
            pks = [pk for _, pk in keys]
        if keys:
            status = combined([record_status(ix, ct, pk, subject_id, visit.pk, trial_id)
                               for ct, pk in keys])
        elif visit.is_overdue or visit.status in (Visit.Status.DONE, Visit.Status.UNSCHEDULED):
            status = ["missing"]
        else:
            status = ["due"]
        forms.append({"form": label, "name": names.get(label, label), "records": pks,
                      "status": status})
    return {"visit": visit.pk, "code": visit.code, "visit_status": visit.status,
            "target_date": visit.target_date, "window_low": visit.window_low,
            "window_high": visit.window_high, "actual_date": visit.actual_date,
            "overdue": visit.is_overdue, "forms": forms}


def _subject_forms(subject: Subject, records, ix, ct_subject: int, names) -> list[dict]:
    rows = [{"form": SUBJECT_LABEL, "name": names[SUBJECT_LABEL], "count": 1,
             "records": [subject.pk], "status": record_status(
                 ix, ct_subject, subject.pk, subject.pk, None, subject.trial_id)}]
    for (subject_id, visit_id, label), keys in sorted(records.items(), key=lambda i: i[0][2]):
        if subject_id != subject.pk or visit_id is not None:
            continue
        rows.append({"form": label, "name": names.get(label, label), "count": len(keys),
                     "records": [pk for _, pk in keys],
                     "status": combined([record_status(ix, ct, pk, subject.pk, None,
                                                       subject.trial_id) for ct, pk in keys])})
    return rows


def status_matrix(trial, user, *, site: Site | None = None, page: int = 1,
                  today: dt.date | None = None) -> dict:
    """The matrix of the subjects of ``trial`` the user reaches (``site``: one site only),
    ``PAGE_SIZE`` subjects per page, with the count of each status over the page's cells."""
    today = today or timezone.localdate()
    subjects = roles.scope(Subject.objects.filter(trial=trial, retired_at__isnull=True), user)
    if site is not None:
        subjects = subjects.filter(site=site)
    count = subjects.count()
    pages = max(1, -(-count // PAGE_SIZE))
    if page < 1 or page > pages:
        raise ValidationError({"page": f"pages run from 1 to {pages}"})
    shown = list(subjects.select_related("site").order_by(
        "site__code", "subject_number", "screening_number")[(page - 1) * PAGE_SIZE:
                                                            page * PAGE_SIZE])
    ids = [s.pk for s in shown]
    visits = list(Visit.objects.filter(subject_id__in=ids, retired_at__isnull=True)
                  .with_overdue(today).order_by("subject_id", "target_date", "code"))
    records = _records(ids)
    ix = status_index(ids, {trial.pk})
    names = _form_names()
    ct_visit = ContentType.objects.get_for_model(Visit).pk
    ct_subject = ContentType.objects.get_for_model(Subject).pk
    by_subject: dict[int, dict] = defaultdict(dict)
    totals: Counter = Counter()
    for visit in visits:
        cell = _visit_cell(visit, records, ix, ct_visit, trial.pk, names)
        by_subject[visit.subject_id][visit.code] = cell
        totals.update(s for form in cell["forms"] for s in form["status"])
    rows = []
    for subject in shown:
        subject_forms = _subject_forms(subject, records, ix, ct_subject, names)
        totals.update(s for form in subject_forms for s in form["status"])
        rows.append({"subject": subject.pk, "subject_number": subject.subject_number,
                     "screening_number": subject.screening_number, "site": subject.site.code,
                     "status": subject.status, "visits": by_subject.get(subject.pk, {}),
                     "subject_forms": subject_forms})
    return {"trial": trial.registry_id, "site": site.code if site else None, "as_of": today,
            "statuses": list(STATUSES), "columns": _columns(visits, {
                s.pk: s.day0 for s in shown}), "count": count, "page": page, "pages": pages,
            "totals": {s: totals.get(s, 0) for s in STATUSES}, "subjects": rows}

