"""Generic targets of data management: any CRF record, addressed by content type + object id.

A *CRF model* is any :class:`edc.core.audit.ClinicalModel` that belongs to a subject: ``Subject``
itself, a model with a ``subject`` foreign key (Visit, Exposure, TumourAssessment,
QlqC30Form, AdverseEvent, ...) or a child of one of those through a foreign key (an AE's
grade episodes), unless it sets ``data_managed = False`` (the records of this app do).
Nothing here names a CRF model other than Subject and Visit, so new forms are covered as they
land.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models

SUBJECT_LABEL = "subjects.subject"
VISIT_LABEL = "visits.visit"


@dataclass(frozen=True)
class Paths:
    """Lookups from a CRF model to its subject, visit (None if it has none) and trial.

    ``parent`` names the foreign key of a child record that reaches its subject through a
    parent CRF record (e.g. a grade episode through its adverse event).
    """

    subject: str
    visit: str | None
    trial: str
    site: str
    parent: str | None = None


def _fk_to(model, name: str, label: str) -> bool:
    try:
        field = model._meta.get_field(name)
    except Exception:
        return False
    return bool(field.concrete and field.is_relation and field.related_model
                and field.related_model._meta.label_lower == label)


def _direct_paths(model) -> Paths | None:
    label = model._meta.label_lower
    if label == SUBJECT_LABEL:
        return Paths(subject="pk", visit=None, trial="trial_id", site="site_id")
    if not _fk_to(model, "subject", SUBJECT_LABEL):
        return None
    if label == VISIT_LABEL:
        visit = "pk"
    else:
        visit = "visit_id" if _fk_to(model, "visit", VISIT_LABEL) else None
    return Paths(subject="subject_id", visit=visit, trial="subject__trial_id",
                 site="subject__site_id")


def _child_paths(model) -> Paths | None:
    """Paths through the first foreign key to a CRF model with a direct subject path."""
    from edc.core.audit import ClinicalModel

    for field in model._meta.concrete_fields:
        parent = field.related_model if field.many_to_one or field.one_to_one else None
        if parent is None or not issubclass(parent, ClinicalModel) or not getattr(
                parent, "data_managed", True):
            continue
        pp = _direct_paths(parent)
        if pp is None or pp.subject == "pk":
            continue

        def hop(path, name=field.name, attname=field.attname):
            return None if path is None else attname if path == "pk" else f"{name}__{path}"

        return Paths(subject=hop(pp.subject), visit=hop(pp.visit), trial=hop(pp.trial),
                     site=hop(pp.site), parent=field.name)
    return None


@functools.cache
def paths(model: type[models.Model]) -> Paths | None:
    """The lookups of a CRF model, or None when the model is not a CRF."""
    from edc.core.audit import ClinicalModel

    model = model._meta.concrete_model
    if not issubclass(model, ClinicalModel) or not getattr(model, "data_managed", True):
        return None
    return _direct_paths(model) or _child_paths(model)


def crf_models() -> list[type[models.Model]]:
    """Every CRF model of the project (Subject first)."""
    found = [m for m in apps.get_models() if not m._meta.proxy and paths(m) is not None]
    return sorted(found, key=lambda m: (m._meta.label_lower != SUBJECT_LABEL,
                                        m._meta.label_lower))


def _parent(record):
    return getattr(record, paths(type(record)).parent, None)


def subject_id_of(record) -> int | None:
    p = paths(type(record))
    if p.subject == "pk":
        return record.pk
    if p.parent:
        parent = _parent(record)
        return subject_id_of(parent) if parent is not None else None
    return record.subject_id


def visit_id_of(record) -> int | None:
    p = paths(type(record))
    if p.visit is None:
        return None
    if p.visit == "pk":
        return record.pk
    if p.parent:
        parent = _parent(record)
        return visit_id_of(parent) if parent is not None else None
    return record.visit_id


def subject_of(record):
    """The Subject a CRF record belongs to."""
    from subjects.models import Subject

    if isinstance(record, Subject):
        return record
    if paths(type(record)).parent:
        return subject_of(_parent(record))
    return record.subject


@dataclass(frozen=True)
class Target:
    """A CRF record (or one of its fields) with the subject, visit and trial it belongs to."""

    record: models.Model
    content_type: ContentType
    subject: models.Model
    visit_id: int | None
    field_name: str = ""

    @property
    def object_id(self) -> int:
        return self.record.pk

    @property
    def trial_id(self) -> int:
        return self.subject.trial_id

    @property
    def site_id(self) -> int:
        return self.subject.site_id

    @property
    def label(self) -> str:
        name = self.record._meta.verbose_name
        text = f"{name} #{self.record.pk} ({self.record})"
        return f"{text}, field {self.field_name}" if self.field_name else text

    def denormalized(self) -> dict:
        """The scoping columns every data-management record stores."""
        return {"trial_id": self.trial_id, "site_id": self.site_id,
                "subject_id": self.subject.pk, "visit_id": self.visit_id,
                "content_type": self.content_type, "object_id": self.record.pk}


def target_of(record: models.Model, field_name: str = "") -> Target:
    """The target of a saved CRF record; ``field_name`` must be one of its concrete fields."""
    if paths(type(record)) is None:
        raise ValidationError(f"{record._meta.verbose_name} records are not case report forms.")
    if field_name:
        names = {f.name for f in record._meta.concrete_fields}
        if field_name not in names or field_name in {"id", "created_at", "updated_at"}:
            raise ValidationError(
                {"field_name": f"{record._meta.verbose_name} has no data field {field_name!r}."}
            )
    return Target(record=record, content_type=ContentType.objects.get_for_model(record),
                  subject=subject_of(record), visit_id=visit_id_of(record), field_name=field_name)


def content_type_of(label: str) -> ContentType:
    """``app_label.model`` (e.g. ``visits.exposure``) of a CRF model."""
    app_label, _, model = (label or "").lower().partition(".")
    try:
        ct = ContentType.objects.get_by_natural_key(app_label, model)
    except ObjectDoesNotExist:
        raise ValidationError({"content_type": f"Unknown form {label!r}."}) from None
    if ct.model_class() is None or paths(ct.model_class()) is None:
        raise ValidationError({"content_type": f"{label!r} is not a case report form."})
    return ct


def resolve(label: str, object_id, queryset_filter=None) -> models.Model:
    """The CRF record ``label`` #``object_id``; ``queryset_filter`` scopes the lookup."""
    model = content_type_of(label).model_class()
    queryset = model.objects.all()
    if queryset_filter is not None:
        queryset = queryset_filter(queryset, paths(model))
    record = queryset.filter(pk=object_id).first() if str(object_id).isdigit() else None
    if record is None:
        raise ValidationError({"object_id": f"No {label} #{object_id} that you can access."})
    return record


def label_of(ct: ContentType) -> str:
    return f"{ct.app_label}.{ct.model}"
