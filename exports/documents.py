"""XML documents of a whole trial: Define-XML 2.1 and ODM 1.3.2 (ORM adapter).

The pure writers are ``exports.define_xml`` and ``exports.odm``; this module feeds them the
trial's data within the user's scope (sites) and blinding (``exports.engine.trial_context``),
one subject at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Min
from django.utils import timezone

from adverse_events.models import AdverseEvent
from subjects.models import Subject
from trials.models import Trial
from visits.models import Exposure, QlqC30Form, Visit

from . import define_xml, engine, odm
from .sdtm import decimal_text


def define_chunks(spec: engine.Spec, trial: Trial) -> Iterator[str]:
    return define_xml.define_xml(
        study_id=trial.registry_id, study_name=trial.title,
        originator=trial.sponsor or "trialdesk", source_system=engine.source_system(),
        created=timezone.now())


def _subject(subject: Subject, arms, treatments) -> odm.SubjectRecord:
    arm = arms.get(subject.arm_id) if subject.arm_id else None
    record = odm.SubjectRecord(subject.usubjid if subject.subject_number
                               else f"{subject.site.code}-{subject.screening_number}",
                               {"SEX": subject.sex, "RACE": subject.race,
                                "RFICDAT": subject.consent_date,
                                "ARM": arm.label if arm else None})
    visits = {v.pk: v.code for v in Visit.objects.filter(subject=subject, retired_at=None)
              .order_by("target_date", "actual_date", "code")}
    for code in visits.values():
        record.visits[code] = []
    for e in Exposure.objects.filter(subject=subject, retired_at=None).order_by(
            "administered_on", "id"):
        view = treatments[e.intervention_id]
        record.visits[visits[e.visit_id]].append(("F.EX", {
            "EXTRT": view.name, "EXDOSE": None if view.mask_dose else decimal_text(e.dose_value),
            "EXDOSU": None if view.mask_dose else e.dose_unit,
            "EXSTDAT": e.administered_on}))
    for f in QlqC30Form.objects.filter(subject=subject, retired_at=None).order_by(
            "completion_date", "id"):
        record.visits[visits[f.visit_id]].append(
            ("F.QLQC30", {f"Q{n}": getattr(f, f"q{n}") for n in range(1, 31)}))
    record.visits = {code: forms for code, forms in record.visits.items() if forms}
    for ae in AdverseEvent.objects.filter(subject=subject, retired_at=None).select_related(
            "term").order_by("onset_date", "id"):
        record.aes.append({"AETERM": ae.verbatim_term or ae.term.term,
                           "AEDECOD": ae.term.term, "AETOXGR": ae.grade,
                           "AESER": "Y" if ae.serious else "N", "AESTDAT": ae.onset_date,
                           "AEENDAT": ae.resolution_date})
    return record


def odm_chunks(spec: engine.Spec, trial: Trial) -> Iterator[str]:
    """The trial's ODM 1.3.2 document (subjects of the scoped sites), streamed."""
    arms, treatments = engine.trial_context(trial, spec)
    subjects = Subject.objects.filter(trial=trial, site_id__in=spec.site_ids,
                                      retired_at=None).select_related("site")
    codes = list(Visit.objects.filter(subject__in=subjects, retired_at=None)
                 .values("code").annotate(first=Min("target_date"))
                 .order_by("first", "code").values_list("code", flat=True))
    return odm.odm_document(
        study_id=trial.registry_id, study_name=trial.title,
        originator=trial.sponsor or "trialdesk", source_system=engine.source_system(),
        created=timezone.now(), visit_codes=codes,
        subjects=(_subject(s, arms, treatments)
                  for s in subjects.order_by("site__code", "screening_number")
                  .iterator(chunk_size=200)))


DOCUMENTS = {"define_xml": define_chunks, "odm": odm_chunks}
