"""The blinded walk (issue 15, acceptance 1): every admin URL and every API GET operation, for
each of the five blinded roles, for one subject of each arm of seed 004 (NCT06722105,
double-blind), compared after removing identifiers: no arm-distinguishing difference.

Nothing is listed by hand:

* admin URLs come from the admin site's registry (each ModelAdmin's own URL patterns, custom
  service pages included, and the site's index, app lists and autocomplete); a URL whose
  parameters the walk cannot fill fails the test;
* API operations come from the OpenAPI document (list, detail and history);
* filter probes come from the models: every lookup path (any spelling: ``arm``, ``arm_id``,
  ``arm__pk``, ``arm__code``, ``intervention_id``, ``subject__arm__label``...) that reaches an
  arm or a product, or whose value differs between the arms' subjects, is tried as a filter
  (admin and API) and as an ordering (API), with the placebo arm's and product's values; the
  admin's own list filters are tried with each choice they offer.

ePRO (issue 21, acceptance 4) is walked too. Seed 004 schedules no QLQ-C30, so the walk
loads it with one assessment added (``WALK_QLQ``, any visit, baseline included): each subject
has a staff-entered form at M0 and an open ePRO link for M3 (made due, its window moved
around today), so the ePRO admin pages and API operations show data; the patient's own pages
of each arm's link (start, items, review, both loaded languages, then the submission and its
refusal) are compared across arms too.

Identifiers are removed by construction: each subject's rows are created with every bigint
sequence moved to a range of its own (``n * 10**12``), so an identifier is a number of 13
digits and is replaced by its offset in the range; subject numbers, timestamps and CSRF tokens
are replaced too, and so are the SHA-256 digests of ePRO link tokens (random per link).
Every page is also searched for the arms' and the placebo's names, codes and per-arm labels
(generated from the protocol rows), and sponsors' pages for the birth date.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import time
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve, reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from adverse_events.models import CtcaeTerm
from edc.core.audit import change_reason
from exports.sdtm import code_from_label
from subjects.enrollment import enroll
from subjects.models import Subject
from tests.conftest import owner_connection
from tests.epro_factories import load_wording
from tests.factories import (
    load_ctcae_terms,
    make_eligible,
    make_site,
    make_subject,
    make_user,
)
from trials.models import Arm, Intervention

pytestmark = pytest.mark.django_db

FATIGUE = "10016256"
DAY0 = timezone.localdate() - dt.timedelta(days=150)
BIRTH = dt.date(1985, 5, 17)
RANGE = 10**12
BLINDED_ROLES = ("site_staff", "investigator", "monitor", "data_manager", "sponsor")

# ---------------------------------------------------------------- data


def _move_sequences(base: int) -> None:
    """Every bigint sequence continues from ``base`` (ids of one subject share a range)."""
    with owner_connection() as cursor:  # setval needs the owner (not transactional)
        cursor.execute("SELECT setval(format('%%I.%%I', schemaname, sequencename)::regclass, "
                       "%s) FROM pg_sequences "
                       "WHERE data_type = 'bigint'::regtype AND schemaname = current_schema()",
                       [base])


@pytest.fixture(scope="module")
def _restore_sequences(django_db_setup):
    with owner_connection() as cursor:
        cursor.execute("SELECT schemaname, sequencename, coalesce(last_value, 1), "
                       "last_value IS NOT NULL FROM pg_sequences "
                       "WHERE data_type = 'bigint'::regtype AND schemaname = current_schema()")
        saved = cursor.fetchall()
    yield
    with owner_connection() as cursor:
        for schema, name, value, called in saved:
            cursor.execute("SELECT setval(format('%%I.%%I', %s::text, %s::text)::regclass, "
                           "%s::bigint, %s::boolean)",
                           [schema, name, value, called])


def _record(api, subject, msc, monitor) -> None:
    """What happens to every subject alike: two infusions, an AE attributed to the study
    treatment, a QLQ-C30 form and a monitor's query (through the API, as the nurse)."""
    m0, m3 = subject.visits.get(code="M0"), subject.visits.get(code="M3")
    dose = {"dose_value": "2000000", "dose_unit": "cells/kg", "weight_kg": "61.5"}
    for visit in (m0, m3):
        response = api.post("/api/v1/exposures/", {
            "visit": visit.pk, "administered_on": str(visit.target_date), **dose}, format="json")
        assert response.status_code == 201, response.json()
    onset = m3.target_date + dt.timedelta(days=2)
    response = api.post("/api/v1/adverse-events/", {
        "subject": subject.pk, "term": CtcaeTerm.objects.get(meddra_code=FATIGUE).pk,
        "onset_date": str(onset), "resolution_date": str(onset + dt.timedelta(days=3)),
        "grade_episodes": [{"grade": 2, "start_date": str(onset),
                            "end_date": str(onset + dt.timedelta(days=3))}],
        "attributions": [{"intervention": msc.pk, "level": "possible"}],
        "serious": False, "expected": False, "action_taken": "dose_not_changed",
        "outcome": "recovered"}, format="json")
    assert response.status_code == 201, response.json()
    response = api.post("/api/v1/qlq-c30-forms/", {
        "subject": subject.pk, "visit": m0.pk, "completion_date": str(m0.target_date),
        "mode": "paper", **{f"q{i}": 2 for i in range(1, 29)}, "q29": 5, "q30": 5},
        format="json")
    assert response.status_code == 201, response.json()  # WALK_QLQ schedules it
    # A source document alike for every subject, and a pharmacy record naming the product
    # given (flagged: hidden from every blinded role).
    for kind, name, flagged in (("lab", "labs.pdf", "false"),
                                ("pharmacy", f"{msc.code} dispensing.pdf", "true")):
        response = api.post("/api/v1/source-documents/", {
            "file": SimpleUploadedFile(name, b"%PDF-1.4\n%%EOF\n"), "kind": kind,
            "subject": subject.pk, "reveals_allocation": flagged,
            "description": f"{kind} record of {msc.agent}" if flagged == "true" else ""},
            format="multipart")
        assert response.status_code == 201, response.json()
    api.force_authenticate(monitor)
    exposure = subject.exposures.order_by("pk").first()
    response = api.post("/api/v1/queries/", {
        "form": "visits.exposure", "object_id": exposure.pk, "field_name": "weight_kg",
        "text": "Please confirm the weight."}, format="json")
    assert response.status_code == 201, response.json()


#: The QLQ-C30 added to seed 004 for the walk (not in its protocol; the quote is one of the
#: document's visits, as the file format requires a quote).
WALK_QLQ = """
[[visit_plan.assessments]]
code = "QOL"
label = "Quality of life (EORTC QLQ-C30)"
kind = ["qol"]
period = "any"
at_baseline = true
instruments = ["EORTC QLQ-C30"]
not_stated = ["interval_weeks"]
note = "Not in the protocol: added by the blinded walk so that a blinded trial has ePRO pages."
quote = "injection at M3"
"""


def _seed_004_with_qlq(directory):
    """Seed 004 loaded from a copy with ``WALK_QLQ`` (its source document beside it)."""
    from django.conf import settings

    from trials.loader import load_files
    from trials.models import Trial

    seeds = settings.BASE_DIR / "seeds"
    text = (seeds / "NCT06722105.toml").read_text(encoding="utf-8")
    at = text.index("\n[eligibility]")
    (directory / "source").mkdir()
    for document in (seeds / "source").glob("004_*"):
        (directory / "source" / document.name).write_bytes(document.read_bytes())
    copy = directory / "NCT06722105.toml"
    copy.write_text(f"{text[:at]}\n{WALK_QLQ}{text[at:]}", encoding="utf-8")
    load_files([copy])
    return Trial.objects.get(registry_id="NCT06722105")


def _epro(api, subject) -> str:
    """An ePRO link for a QLQ-C30 at M3 (made due, its window moved around today), left
    open: its token."""
    today = timezone.localdate()
    with change_reason("M3 QLQ-C30 due, window around today, for the blinded walk's ePRO"):
        subject.visits.filter(code="M3").update(
            qlq_c30_due=True, window_low=today - dt.timedelta(days=3),
            window_high=today + dt.timedelta(days=3))
    response = api.post("/api/v1/epro-links/", {"visit": subject.visits.get(code="M3").pk},
                        format="json")
    assert response.status_code == 201, response.json()
    return response.json()["url"].rstrip("/").rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def _walk_data(_restore_sequences, django_db_blocker, tmp_path_factory):
    """The walk's data, made once for the tests of this module that one process runs (each
    role's walk used to make it again: ~4 s a test), in a transaction of its own that is
    rolled back afterwards; each test still runs in a savepoint inside it (pytest-django's
    ``django_db``), so what a test writes is undone before the next one."""
    from django.db import transaction
    from django.test import override_settings

    media = override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("walk") / "media")
    media.enable()  # the source documents
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            data = _make_walk(APIClient(), tmp_path_factory.mktemp("seed"))
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            media.disable()
            raise
    yield data
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
    media.disable()


@pytest.fixture
def walk(_walk_data):
    """Seed 004 with one site, a subject of each arm with the same data, a user per blinded
    role, and an extra subject unblinded in an emergency by the (blinded) investigator
    (made once per module: ``_walk_data``); the cache cleared for each test, as before."""
    from django.core.cache import cache

    cache.clear()
    return _walk_data


def _make_walk(api, tmp_path) -> dict:
    from django.core.cache import cache

    cache.clear()  # ePRO link issue is rate-limited per user
    load_ctcae_terms()
    trial = _seed_004_with_qlq(tmp_path)
    load_wording(trial, "zh-hans", default=True)
    load_wording(trial, "fr")
    site = make_site(trial, "P1")
    other = make_site(trial, "P2")
    users = {role: make_user(f"walk_{role}", role,
                             (trial, site if role in ("site_staff", "investigator") else None))
             for role in BLINDED_ROLES}
    by_arm, extra = {}, []
    for n in range(1, 13):  # the concealed list is followed: enroll until every arm has two
        _move_sequences(n * RANGE)
        subject = enroll(make_eligible(make_subject(
            trial, site, age_at_consent=40, birth_date=BIRTH,
            consent_date=DAY0 - dt.timedelta(days=7))), enrolled_on=DAY0)
        if subject.arm.code in by_arm:
            extra.append(subject)
        else:
            by_arm[subject.arm.code] = (n, subject)
        if len(by_arm) == 3 and extra:
            break
    assert len(by_arm) == 3
    msc = Intervention.objects.get(protocol_version=trial.current_version(), code="MSC-AT")
    api.force_authenticate(users["site_staff"])
    api.post("/api/v1/subjects/", {"trial": trial.pk, "site": other.pk})  # refused: no access
    tokens = {}
    for n, subject in by_arm.values():
        _move_sequences(n * RANGE + RANGE // 2)
        api.force_authenticate(users["site_staff"])
        _record(api, subject, msc, users["monitor"])
        api.force_authenticate(users["site_staff"])
        tokens[subject.pk] = _epro(api, subject)
    _move_sequences(99 * RANGE)
    elsewhere = enroll(make_eligible(make_subject(
        trial, other, screening_number="OTHER-SITE-7", age_at_consent=40,
        consent_date=DAY0 - dt.timedelta(days=7))), enrolled_on=DAY0)
    api.force_authenticate(users["investigator"])
    unblinded = api.post(f"/api/v1/subjects/{extra[0].pk}/unblind/",
                         {"reason": "emergency: anaphylaxis, treating physician"}, format="json")
    assert unblinded.status_code == 200, unblinded.json()
    api.force_authenticate(None)
    return {"trial": trial, "site": site, "users": users, "elsewhere": elsewhere,
            "subjects": [s for _, s in sorted(by_arm.values(), key=lambda p: p[0])],
            "unblinded": extra[0], "unblinding": unblinded.json(), "epro_tokens": tokens}


# ---------------------------------------------------------------- what reveals an arm


def forbidden_texts(trial, role: str) -> list[str]:
    """Text that tells an arm or the placebo apart: arm labels, codes and per-arm labels (also
    as SDTM ARMCD), the placebo's code and name; for sponsors also the birth date."""
    texts = set()
    for arm in Arm.objects.filter(protocol_version__trial=trial):
        for value in (arm.label, arm.code, arm.blinded_label):
            if value:
                texts |= {value, code_from_label(value)}
    for product in Intervention.objects.filter(protocol_version__trial=trial).exclude(
            placebo_for=""):
        texts |= {product.code, product.agent}
    if role == "sponsor":
        texts |= {str(BIRTH), repr(BIRTH), BIRTH.strftime("%b. %d, %Y").replace(" 0", " ")}
    return sorted(texts)


#: The allocation itself: paths through these reveal an arm or a product.
ALLOCATION_MODELS = {"trials.Arm", "trials.Intervention", "subjects.RandomizationSlot"}


_PATHS: dict = {}


def _paths(model, depth: int = 2, prefix: str = "", seen=()) -> list:
    """``(lookup path, field)`` for every field reachable from ``model`` in ``depth`` steps
    (forward relations and reverse one-to-one / foreign keys, audit event tables included)."""
    key = (model, depth, prefix, seen)
    if key not in _PATHS:
        out = []
        for field in model._meta.get_fields():
            if field.many_to_many or getattr(field, "related_model", None) is model:
                continue
            path = f"{prefix}{field.name}"
            out.append((path, field))
            related = getattr(field, "related_model", None)
            if related is not None and depth > 1 and related not in seen:
                out += _paths(related, depth - 1, f"{path}__", (*seen, model))
        _PATHS[key] = out
    return _PATHS[key]


def _value(obj, path: str, subject) -> list[str]:
    values = type(obj)._default_manager.filter(pk=obj.pk).values_list(path, flat=True)
    return sorted(normalise(str(v), [subject]) for v in values)


def _target(label: str, subjects, placebo_arm, placebo):
    return {"trials.Arm": placebo_arm, "trials.Intervention": placebo,
            "subjects.RandomizationSlot": subjects[-1].randomization_slot}[label]


def allocation_paths(model) -> list[str]:
    """The lookup paths from ``model`` into the allocation (an arm, a product, a slot)."""
    return [path for path, field in _paths(model)
            if getattr(field, "related_model", None) is not None
            and field.related_model._meta.label in ALLOCATION_MODELS]


_PROBES: dict = {}


def probes(model, subjects, placebo_arm, placebo) -> list[tuple[str, str]]:
    """``(lookup, value)`` filters that would pick one arm's rows: every spelling of every
    path into the allocation, and every field whose value differs between the arms' subjects
    (once identifiers are set aside), with the placebo subject's value."""
    key = (model, tuple(s.pk for s in subjects))
    if key in _PROBES:
        return _PROBES[key]
    out = []
    samples = {s: _objects(model, s)[:1] for s in subjects}
    for path, field in _paths(model):
        related = getattr(field, "related_model", None)
        label = related._meta.label if related is not None else None
        if label in ALLOCATION_MODELS:
            target = _target(label, subjects, placebo_arm, placebo)
            ends = [path]
            if "__" not in path:  # every spelling of the model's own relations
                ends += [f"{path}__pk", f"{path}__id__exact", f"{path}__in"]
                if field.concrete:
                    ends.append(field.attname)
            out += [(end, str(target.pk)) for end in ends]
            if hasattr(target, "code"):
                out.append((f"{path}__code", target.code))
            continue
        if related is not None or not field.concrete or not all(samples.values()) or (
                "__" in path and not _forward(model, path)):
            continue  # values compared: own fields and those of forward relations
        seen = {tuple(_value(objs[0], path, s)) for s, objs in samples.items()}
        placebo_values = _value(samples[subjects[-1]][0], path, subjects[-1])
        if len(seen) > 1 and placebo_values:  # differs by arm: the placebo subject's value
            out.append((path, placebo_values[0]))
    _PROBES[key] = sorted(set(out))
    return _PROBES[key]


def _forward(model, path: str) -> bool:
    first = model._meta.get_field(path.split("__")[0])
    return first.concrete and first.is_relation


def api_probes(model, parameters, subjects, placebo_arm, placebo) -> list[tuple[str, str]]:
    """The probes an API list could honour: its documented filters (DRF ignores any other
    parameter) and the plain and ``_id`` spellings of each path into the allocation."""
    if model is None:
        return []
    plain = set(allocation_paths(model))
    plain |= {f"{p}_id" for p in plain}
    return [(lookup, value) for lookup, value in probes(model, subjects, placebo_arm, placebo)
            if lookup in parameters or lookup in plain]


# ---------------------------------------------------------------- identifiers removed

TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| UTC)?"
    r"|[A-Z][a-z]{2,3}\.? \d{1,2}, \d{4}, (\d{1,2}(:\d{2})? [ap]\.m\.|noon|midnight)"
    r"|\b\d{2}:\d{2}:\d{2}\b|datetime\.datetime\(\d+(, \d+)*(, tzinfo=[\w.]+(\([^)]*\))?)?\)")
#: A CSRF token (random: it may spell an arm's code), as a form, a page's script or the API
#: docs' ``X-CSRFTOKEN`` header shows it
CSRF = re.compile(r'(csrfmiddlewaretoken" value="|csrftoken\W+)[\w-]+', re.IGNORECASE)
IDENTIFIER = re.compile(r"(?<!\d)([1-9]\d?)\d{12}(?!\d)")
#: SHA-256 of a random secret (an ePRO link's token): random per record, like an identifier.
DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


LOADED_VERSION = re.compile(r"(<id\+\d+>-)\d{10,}")


def normalise(text: str, subjects) -> str:
    """``text`` without identifiers: the compared subjects' numbers (whichever is the page's
    own: a dropdown of subjects reads the same on each page, its selection set aside), ids
    (their offset in the subject's range), digests of random tokens, timestamps and CSRF
    tokens."""
    text = DIGEST.sub("<sha256>", text)  # first: a digest may hold a 13-digit run
    for subject in subjects:
        for value, name in ((subject.usubjid, "USUBJID"), (subject.subject_number, "SUBJID"),
                            (subject.screening_number, "SCREENING")):
            if value in text:  # (a page without it: nothing to replace, no regex scan)
                text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", f"<{name}>", text)
    text = IDENTIFIER.sub(lambda m: f"<id+{int(m[0]) % RANGE}>", text)
    text = text.replace(" selected>", ">")
    text = LOADED_VERSION.sub(r"\1<version>", text)  # optimistic-concurrency token (a time)
    return CSRF.sub(r"\1<csrf>", TIMESTAMP.sub("<ts>", text))


# ---------------------------------------------------------------- what to walk


def _subject_path(model) -> str | None:
    if issubclass(model, Subject):
        return "pk"
    try:
        field = model._meta.get_field("subject")
    except FieldDoesNotExist:
        return None
    return "subject" if field.concrete and field.related_model is Subject else None


def _objects(model, subject) -> list:
    path = _subject_path(model)
    return list(model._default_manager.filter(**{path: subject.pk}).order_by("pk"))


def _trial_objects(model, model_admin, trial) -> list:
    """A few rows of a model without a subject: those of the trial where it has one (the
    admin's or viewset's ``scope_trial`` path, else a ``trial`` field)."""
    path = getattr(model_admin, "scope_trial", None)
    rows = model._default_manager.all()
    if path is None and any(f.name == "trial" for f in model._meta.get_fields()):
        path = "trial"
    if path:
        rows = rows.filter(**{path: trial.pk})
    if model is CtcaeTerm:
        rows = rows.filter(meddra_code=FATIGUE)
    return list(rows.order_by("pk")[:3])


#: Admin site URLs without clinical content (the login and password pages, static i18n).
SITE_URLS_WITHOUT_DATA = {"login", "logout", "password_change", "password_change_done",
                          "jsi18n", "view_on_site"}


def admin_urls(trial, subjects, placebo_arm, placebo, client, probing=True, fetched=None):
    """``(key, {subject pk or None: url})`` for every admin URL; ``None`` = not per subject."""
    site_names = {p.name for p in admin.site.get_urls() if getattr(p, "name", None)}
    model_names = set()
    for model, model_admin in admin.site._registry.items():
        model_names |= {p.name for p in model_admin.get_urls() if p.name}
        yield from _model_admin_urls(model, model_admin, trial, subjects, placebo_arm, placebo,
                                     client, probing, fetched)
    unknown = site_names - model_names - SITE_URLS_WITHOUT_DATA - {"index", "app_list",
                                                                   "autocomplete"}
    for pattern in admin.site.get_urls():  # the site's own pages of a model (dashboards)
        if getattr(pattern, "name", None) in unknown:
            model, model_admin = _model_of(pattern.name)
            if model is not None:
                unknown.discard(pattern.name)
                yield from _site_urls(pattern, model, model_admin, trial, subjects)
    assert unknown == set(), f"admin URLs the walk does not know: {unknown}"
    yield "index", {None: reverse("admin:index")}
    for app in sorted({m._meta.app_label for m in admin.site._registry}):
        yield f"app {app}", {None: reverse("admin:app_list", args=[app])}
    for model, model_admin in admin.site._registry.items():
        for field in model_admin.autocomplete_fields:
            query = {"app_label": model._meta.app_label, "model_name": model._meta.model_name,
                     "field_name": field, "term": "fat"}
            yield f"autocomplete {model._meta.label}.{field}", {
                None: f"{reverse('admin:autocomplete')}?{urlencode(query)}"}


def _model_admin_urls(model, model_admin, trial, subjects, placebo_arm, placebo, client,
                      probing, fetched=None):
    opts = model._meta
    path = _subject_path(model)
    for pattern in model_admin.get_urls():
        if not pattern.name:
            continue  # the bare "<object_id>/" redirect to the change page
        name = f"admin:{pattern.name}"
        params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
        key = f"{opts.label} {pattern.name}"
        if not params and pattern.name.endswith("_changelist") and path:
            changelist = reverse(name)
            ids = {s.pk: "id__exact" if path == "pk" else "subject__id__exact"
                   for s in subjects}
            yield key, {s.pk: f"{changelist}?{ids[s.pk]}={s.pk}" for s in subjects}
            for lookup, value in probes(model, subjects, placebo_arm, placebo) if probing else ():
                yield f"{key} ?{lookup}", {
                    s.pk: f"{changelist}?{urlencode({ids[s.pk]: s.pk, lookup: value})}"
                    for s in subjects}
            for query in _list_filter_choices(client, changelist, subjects[0], ids, fetched):
                yield f"{key} {query}", {
                    s.pk: f"{changelist}?{ids[s.pk]}={s.pk}&{query}" for s in subjects}
        elif not params:
            url = reverse(name)
            if pattern.name.endswith("_add") and path and path != "pk":
                yield key, {s.pk: f"{url}?subject={s.pk}" for s in subjects}
            else:
                yield key, {None: url}
        elif path:
            assert len(params) == 1, f"{key}: cannot fill {params}"
            for index in range(max(len(_objects(model, s)) for s in subjects)):
                urls = {}
                for s in subjects:
                    objects = _objects(model, s)
                    urls[s.pk] = (reverse(name, args=[objects[index].pk])
                                  if index < len(objects) else None)
                yield f"{key} #{index}", urls
        else:
            assert len(params) == 1, f"{key}: cannot fill {params}"
            for obj in _trial_objects(model, model_admin, trial):
                yield f"{key} {obj.pk}", {None: reverse(name, args=[obj.pk])}


def _model_of(name: str):
    """The registered model whose admin URL names prefix ``name`` (``trials_trial_...``)."""
    for model, model_admin in admin.site._registry.items():
        if name.startswith(f"{model._meta.app_label}_{model._meta.model_name}_"):
            return model, model_admin
    return None, None


def _site_urls(pattern, model, model_admin, trial, subjects):
    """A page of the admin site about one row of ``model`` (the trial's), also with each
    subject as its ``?subject=`` filter, or a page without parameters."""
    name = f"admin:{pattern.name}"
    params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
    key = f"site {pattern.name}"
    if not params:
        yield key, {None: reverse(name)}
        return
    assert len(params) == 1, f"{key}: cannot fill {params}"
    for obj in _trial_objects(model, model_admin, trial):
        url = reverse(name, args=[obj.pk])
        yield f"{key} {obj.pk}", {None: url}
        yield f"{key} {obj.pk} ?subject", {s.pk: f"{url}?subject={s.pk}" for s in subjects}


def _list_filter_choices(client, changelist: str, subject, ids, fetched=None) -> list[str]:
    """The query strings of every choice the changelist's own filters offer the user. The
    page is requested as the walk requests it (:func:`_get`); with ``fetched`` (a dict), it is
    kept there by URL, for the walk to check instead of requesting the same URL again."""
    url = f"{changelist}?{ids[subject.pk]}={subject.pk}"
    page = _request(client, url)
    if fetched is not None:
        fetched[url] = _shown(page)
    if page.status_code != 200 or page.context is None or "cl" not in page.context:
        return []
    queries = set()
    for spec in page.context["cl"].filter_specs:
        if not isinstance(spec, admin.SimpleListFilter):
            continue  # a field's own choices: covered by the probes of its path
        for choice in spec.choices(page.context["cl"]):
            query = choice.get("query_string", "").lstrip("?")
            parts = [p for p in query.split("&") if p and not p.startswith(ids[subject.pk])]
            if parts:
                queries.add("&".join(parts))
    return sorted(queries)


_SCHEMA: list = []


def _schema() -> dict:
    """The OpenAPI document (the same for every test of a process: generated once)."""
    if not _SCHEMA:
        _SCHEMA.append(SchemaGenerator().get_schema(request=None, public=True))
    return _SCHEMA[0]


def api_urls(trial, subjects, placebo_arm, placebo, probing=True):
    """``(key, {subject pk or None: url})`` for every GET operation of the OpenAPI document."""
    schema = _schema()
    yield "schema", {None: "/api/schema/"}
    yield "docs", {None: "/api/docs/"}
    for route, operations in sorted(schema["paths"].items()):
        operation = operations.get("get")
        if operation is None:
            continue
        parameters = {p["name"]: p for p in operation.get("parameters", [])}
        in_path = [p for p in parameters.values() if p["in"] == "path"]
        query = {"trial": trial.pk} if "trial" in parameters else {}
        view = resolve(re.sub(r"\{\w+\}", "1", route)).func
        model = getattr(getattr(view.cls, "queryset", None), "model", None)
        if not in_path:
            if "subject" in parameters:
                yield route, {s.pk: f"{route}?{urlencode({**query, 'subject': s.pk})}"
                              for s in subjects}
                for lookup, value in api_probes(model, parameters, subjects, placebo_arm,
                                                placebo) if probing else ():
                    yield f"{route} ?{lookup}", {s.pk: "{}?{}".format(route, urlencode(
                        {**query, "subject": s.pk, lookup: value})) for s in subjects}
                if "ordering" in parameters and model is not None and probing:
                    for lookup in allocation_paths(model):
                        yield f"{route} ordering {lookup}", {None: [
                            "{}?{}".format(route, urlencode({**query, "ordering": sign + lookup}))
                            for sign in ("", "-")]}
            else:
                yield route, {None: f"{route}?{urlencode(query)}"}
            continue
        assert len(in_path) == 1, f"{route}: cannot fill {list(parameters)}"
        (parameter,) = in_path
        if parameter["schema"].get("enum"):
            for value in parameter["schema"]["enum"]:
                yield f"{route} {value}", {None: route.replace(
                    f"{{{parameter['name']}}}", str(value)) + f"?{urlencode(query)}"}
            continue
        assert model is not None, f"{route}: no model for {{{parameter['name']}}}"
        path = _subject_path(model)
        if path is None:
            for obj in _trial_objects(model, view.cls, trial):
                url = route.replace(f"{{{parameter['name']}}}", str(obj.pk))
                yield f"{route} {obj.pk}", {None: url}
                if "subject" in parameters:  # a trial-wide view filtered to one subject
                    yield f"{route} {obj.pk} ?subject", {
                        s.pk: f"{url}?{urlencode({'subject': s.pk})}" for s in subjects}
            continue
        for index in range(max(len(_objects(model, s)) for s in subjects)):
            urls = {}
            for s in subjects:
                objects = _objects(model, s)
                urls[s.pk] = route.replace(f"{{{parameter['name']}}}", str(
                    objects[index].pk)) if index < len(objects) else None
            yield f"{route} #{index}", urls


# ---------------------------------------------------------------- the walk


def _request(client, url: str):
    client.cookies.pop("messages", None)  # a message left by the previous page
    return client.get(url, HTTP_ACCEPT="application/json, text/html;q=0.9")


def _shown(response) -> tuple[int, str]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    location = response.get("Location", "")
    return response.status_code, f"{location}\n{body.decode('utf-8', 'replace')}"


def _get(client, url: str, fetched=None) -> tuple[int, str]:
    """The status and text of ``url``: requested, or the page already requested by the
    same client (same user) while the URLs were listed (``fetched``: taken once)."""
    if fetched and url in fetched:
        return fetched.pop(url)
    return _shown(_request(client, url))


def blinded_walk(client, walk, roles=BLINDED_ROLES) -> tuple[list[str], int]:
    """Every admin URL and API GET operation for each of ``roles``: the problems found."""
    trial, subjects = walk["trial"], walk["subjects"]
    placebo_arm = subjects[-1].arm  # compared against the others' values
    placebo = Intervention.objects.get(protocol_version=trial.current_version(), code="PBO")
    problems, requests = [], 0
    for role in roles:
        if problems:
            break  # report the first role's problems without walking the others
        client.force_login(walk["users"][role])
        forbidden = forbidden_texts(trial, role)
        # The lookup guards do not depend on the user: filters are probed for the first role.
        probing = role == BLINDED_ROLES[0]
        fetched = {}  # the changelists requested for their filters' choices
        for key, urls in [*admin_urls(trial, subjects, placebo_arm, placebo, client, probing,
                                      fetched),
                          *api_urls(trial, subjects, placebo_arm, placebo, probing)]:
            if None in urls and isinstance(urls[None], list):  # orderings: both directions
                bodies = [_get(client, url) for url in urls[None]]
                requests += len(bodies)
                if len(set(bodies)) > 1:
                    problems.append(f"{role} {key}: the order follows the allocation")
                continue
            seen = {}
            for subject_pk, url in urls.items():
                if url is None:
                    seen[subject_pk] = "(no such object)"
                    continue
                status, text = _get(client, url, fetched)
                requests += 1
                # CSRF tokens are random letters and digits: a code like "PBO" turns up in one
                # now and then (every admin page carries two: log-out and language forms)
                shown = CSRF.sub(r"\1<csrf>", text)  # once a page, not once a text
                leaks = [t for t in forbidden if t in shown]
                if leaks:
                    problems.append(f"{role} {key}: {url} shows {leaks}")
                    print(problems[-1][:300], flush=True)
                seen[subject_pk] = f"{status}\n{normalise(text, subjects)}"
            first, *others = seen.values()
            for other in others:
                if other != first:
                    diff = list(difflib.unified_diff(first.splitlines(), other.splitlines(),
                                                     lineterm="", n=0))[2:8]
                    problems.append(f"{role} {key}: differs by arm: {diff}")
                    print(problems[-1][:600], flush=True)
                    break
    return problems, requests


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_no_blinded_role_can_tell_the_arms_apart(client, walk, role):
    """One test per role, so a parallel run (pytest-xdist) walks the roles side by side."""
    started = time.monotonic()
    problems, requests = blinded_walk(client, walk, roles=(role,))
    print(f"blinded walk ({role}): {requests} requests in {time.monotonic() - started:.1f} s")
    assert requests > 300
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:80])


def test_browsable_api_forms_name_no_other_site(client, walk):
    """The browsable API's filter and entry forms list the user's own subjects and visits
    only: every list operation of the OpenAPI document, as site staff of site P1."""
    elsewhere = walk["elsewhere"]
    secrets = [elsewhere.screening_number, elsewhere.subject_number, elsewhere.usubjid]
    client.force_login(walk["users"]["site_staff"])
    schema = _schema()
    pages = 0
    for route, operations in sorted(schema["paths"].items()):
        if "get" not in operations or "{" in route:
            continue
        page = client.get(route, {"format": "api"}, HTTP_ACCEPT="text/html")
        body = b"".join(page.streaming_content) if page.streaming else page.content
        text = body.decode("utf-8", "replace")
        pages += 1
        found = [s for s in secrets if s in text]
        assert found == [], (route, [text[max(0, text.index(s) - 300):text.index(s) + 60]
                                     for s in found])
    assert pages > 20


def test_the_epro_patient_pages_are_alike_in_every_arm(walk):
    """The patient's pages of each arm's open link (start, items, the review, in both loaded
    languages, the confirmation and the refusal to reopen): the same page but for the token,
    and no arm or product named."""
    from django.test import Client

    forbidden = forbidden_texts(walk["trial"], "site_staff")
    seen = {}
    for subject in walk["subjects"]:
        token, patient, pages = walk["epro_tokens"][subject.pk], Client(), []
        steps = [("get", "", 200), ("get", "item/1/", 200), ("post", "item/1/", 302),
                 ("get", "review/", 200), ("post", "language/", 302), ("get", "", 200),
                 ("get", "item/30/", 200), ("get", "review/", 200), ("post", "submit/", 302),
                 ("get", "/epro/done/?lang=fr", 200), ("get", "", 410)]
        for method, path, status in steps:
            url = path if path.startswith("/") else f"/epro/{token}/{path}"
            body = {"language/": {"language": "fr"}, "item/1/": {"answer": "2", "go": "next"},
                    "submit/": {"device_time": ""}}.get(path, {})
            page = patient.post(url, body) if method == "post" else patient.get(url)
            assert page.status_code == status, (url, page.status_code)
            text = CSRF.sub(r"\1<csrf>", f"{page.get('Location', '')}\n"
                                          f"{page.content.decode()}")
            assert not [t for t in forbidden if t in text], (path, forbidden)
            pages.append(normalise(text.replace(token, "<token>"), walk["subjects"]))
        seen[subject.pk] = pages
    first, *others = seen.values()
    assert all(other == first for other in others)
