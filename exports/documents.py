"""XML documents of a whole trial: Define-XML 2.1 and ODM 1.3.2 (ORM adapter).

The pure writers are ``exports.define_xml`` and ``exports.odm``; this module feeds them the
trial's data within the user's scope (sites) and blinding (``exports.engine.trial_context``),
one subject at a time. The ODM audit records come from the audit trail (the pghistory event
rows of ``edc.core.audit``: snapshot, time, and the context's user and reason for change):
the user is ``USR.<user id>`` (``odm.SYSTEM_USER`` when no person is recorded), the location
the subject's site; for a user blinded to the trial the reasons for change read product names
as ``trials.blinding.BLINDED_PRODUCT`` and arm codes and labels as ``Blinded``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

from django.contrib.auth import get_user_model
from django.db.models import Min
from django.utils import timezone

from adverse_events.models import AdverseEvent, CtcaeTerm
from subjects.models import Site, Subject
from trials.blinding import BLINDED_ARM, BLINDED_PRODUCT
from trials.models import Arm, Intervention, Trial
from visits.models import Exposure, QlqC30Form, Visit

from . import define_xml, engine, odm
from .sdtm import decimal_text


def define_chunks(spec: engine.Spec, trial: Trial) -> Iterator[str]:
    return define_xml.define_xml(
        study_id=trial.registry_id, study_name=trial.title,
        originator=trial.sponsor or "trialdesk", source_system=engine.source_system(),
        created=timezone.now())


def reason_masker(trial: Trial, spec: engine.Spec) -> Callable[[str | None], str | None]:
    """Reasons for change as the user may read them (module doc): every arm code and label
    reads ``Blinded``, every product code and name ``BLINDED_PRODUCT``, longest name first
    (an arm code may contain a product code)."""
    if spec.unblinded or not trial.is_blinded:
        return lambda text: text
    shown = {name: BLINDED_PRODUCT for pair in Intervention.objects.filter(
        protocol_version__trial=trial).values_list("code", "agent") for name in pair if name}
    shown.update({name: BLINDED_ARM for arm in Arm.objects.filter(protocol_version__trial=trial)
                  for name in (arm.code, arm.label, arm.blinded_label) if name})
    if not shown:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(name) for name in sorted(shown, key=len,
                                                                       reverse=True)))
    return lambda text: pattern.sub(lambda m: shown[m.group(0)], text) if text else text


class _Context:
    """What every subject of one ODM export shares: views, masks and term names."""

    def __init__(self, trial: Trial, spec: engine.Spec):
        self.arms, self.treatments = engine.trial_context(trial, spec)
        self.mask = reason_masker(trial, spec)
        self.terms = dict(CtcaeTerm.objects.values_list("pk", "term"))

    def audit(self, event, location: str) -> odm.Audit:
        context = event.pgh_context or {}
        user = context.get("user")
        return odm.Audit(f"USR.{user}" if user else odm.SYSTEM_USER, location,
                         event.pgh_created_at, self.mask(context.get("reason")))

    def history(self, events, location: str, values) -> list[odm.Change]:
        return odm.changes((self.audit(e, location), values(e), e.retired_at is not None)
                           for e in events)

    def dm(self, e) -> dict:
        arm = self.arms.get(e.arm_id) if e.arm_id else None
        return {"SEX": e.sex, "RACE": e.race, "RFICDAT": e.consent_date,
                "ARM": arm.label if arm else None}

    def ex(self, e) -> dict:
        view = self.treatments[e.intervention_id]
        return {"EXTRT": view.name,
                "EXDOSE": None if view.mask_dose else decimal_text(e.dose_value),
                "EXDOSU": None if view.mask_dose else e.dose_unit,
                "EXSTDAT": e.administered_on}

    @staticmethod
    def qlq(e) -> dict:
        return {f"Q{n}": getattr(e, f"q{n}") for n in range(1, 31)}

    def ae(self, e) -> dict:
        term = self.terms.get(e.term_id)
        return {"AETERM": e.verbatim_term or term, "AEDECOD": term, "AETOXGR": e.grade,
                "AESER": "Y" if e.serious else "N", "AESTDAT": e.onset_date,
                "AEENDAT": e.resolution_date}


def _records(model, subject: Subject):
    """The audit versions of ``model``'s records of ``subject``, grouped by record (in the
    order of creation), each group oldest first."""
    events = model.pgh_event_model.objects.filter(subject_id=subject.pk).order_by(
        "pgh_obj_id", "pgh_id")
    return [list(group) for _, group in itertools.groupby(events, key=lambda e: e.pgh_obj_id)]


def _subject(subject: Subject, ctx: _Context) -> odm.SubjectRecord:
    location = f"LOC.{subject.site.code}"
    key = (subject.usubjid if subject.subject_number
           else f"{subject.site.code}-{subject.screening_number}")
    dm_events = Subject.pgh_event_model.objects.filter(pgh_obj_id=subject.pk).order_by("pgh_id")
    record = odm.SubjectRecord(key, location, ctx.history(dm_events, location, ctx.dm))
    visits = dict(Visit.objects.filter(subject=subject).order_by(
        "target_date", "actual_date", "code").values_list("pk", "code"))
    forms: dict[str, list] = {code: [] for code in visits.values()}
    for form, values in (("F.EX", ctx.ex), ("F.QLQC30", ctx.qlq)):
        model = Exposure if form == "F.EX" else QlqC30Form
        for events in _records(model, subject):
            if events[-1].visit_id is None:  # a dosing period: the exposure log
                record.exposures.append(ctx.history(events, location, values))
                continue
            code = visits[events[-1].visit_id]
            repeat = sum(1 for f, _, _ in forms[code] if f == form) + 1 if form == "F.EX" \
                else None
            forms[code].append((form, repeat, ctx.history(events, location, values)))
    record.visits = {code: found for code, found in forms.items() if found}
    record.aes = [ctx.history(events, location, ctx.ae)
                  for events in _records(AdverseEvent, subject)]
    return record


def _users(subjects) -> list[tuple[str, str]]:
    """(User OID, login name) of every person named in the audit trail of the subjects."""
    ids: set[int] = set()
    for model, lookup in ((Subject, "pgh_obj_id__in"), (Exposure, "subject_id__in"),
                          (QlqC30Form, "subject_id__in"), (AdverseEvent, "subject_id__in")):
        ids.update(model.pgh_event_model.objects.filter(**{lookup: subjects.values("pk")})
                   .exclude(pgh_context__user=None)
                   .values_list("pgh_context__user", flat=True).distinct())
    users = get_user_model().objects.filter(pk__in=ids).order_by("pk")
    return [(f"USR.{pk}", name) for pk, name in users.values_list("pk", "username")]


def odm_chunks(spec: engine.Spec, trial: Trial) -> Iterator[str]:
    """The trial's ODM 1.3.2 document with its audit trail (subjects of the scoped sites),
    streamed."""
    ctx = _Context(trial, spec)
    subjects = Subject.objects.filter(trial=trial, site_id__in=spec.site_ids,
                                      retired_at=None).select_related("site")
    codes = list(Visit.objects.filter(subject__in=subjects)
                 .values("code").annotate(first=Min("target_date"))
                 .order_by("first", "code").values_list("code", flat=True))
    sites = Site.objects.filter(pk__in=spec.site_ids).order_by("code")
    return odm.odm_document(
        study_id=trial.registry_id, study_name=trial.title,
        originator=trial.sponsor or "trialdesk", source_system=engine.source_system(),
        created=timezone.now(), effective=trial.current_version().created_at.date(),
        visit_codes=codes, users=_users(subjects),
        locations=[(f"LOC.{s.code}", s.name or s.code) for s in sites],
        subjects=(_subject(s, ctx)
                  for s in subjects.order_by("site__code", "screening_number")
                  .iterator(chunk_size=200)))


DOCUMENTS = {"define_xml": define_chunks, "odm": odm_chunks}
