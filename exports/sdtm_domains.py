"""SDTM SV, DS, IE and TS (SDTMIG 3.4), in plain Python: what engine rows become.

* SV (section 5.4, Subject Visits): one record per visit that took place or was planned and
  not done; SVPRESP "Y" for planned visits, SVOCCUR "Y"/"N" for them (null for unscheduled
  ones), SVREASOC the recorded reason a planned visit did not occur; SVSTDTC = SVENDTC = the
  visit date (the CRF records a day).
* DS (section 6.2, Disposition): protocol milestones (informed consent; randomization in
  randomized trials) and disposition events (screen failure, end of treatment, end of study)
  with DSDECOD from CDISC CT NCOMPLT / PROTMLST; a stored reason the table below does not map
  stops the export (``terminology.UnmappedTerm``): a human decides the coding.
* IE (section 6.3, Inclusion/Exclusion Criteria Not Met): one record per criterion not met
  (an inclusion answered "not met", an exclusion answered "present"). IETESTCD is ``IN<nn>`` /
  ``EX<nn>`` (the criterion's number in the protocol file, as TI); IETEST is the criterion text,
  shortened to 200 bytes (UTF-8) with " ..." where longer (SDTMIG 3.4 IE assumption 3: the full
  text is in the trial design metadata). IEDTC: the CRF records no assessment date (null).
* TS (section 7.6, Trial Summary): parameters the protocol file states (title, registry id,
  sponsor, phase, planned subjects, blinding, randomization, number of arms, start date,
  investigational treatments); TSVALCD/TSVCDREF for CT-coded values.
"""

from __future__ import annotations

from collections.abc import Iterator

from subjects import lifecycle

from . import terminology
from .sdtm import (
    Study,
    Variable,
    _v,
    clip,
    epoch,
    iso_date,
    mapped,
    study_day,
    usubjid,
    visit_number,
)

_STUDY = _v("STUDYID", "Study Identifier", length=40, key=1)
_DOMAIN = _v("DOMAIN", "Domain Abbreviation", length=2)
_USUBJID = _v("USUBJID", "Unique Subject Identifier", length=102, key=2)
_EPOCH = _v("EPOCH", "Epoch", length=9)

SV_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("VISITNUM", "Visit Number", "double", key=3),
    _v("VISIT", "Visit Name", length=40),
    _v("SVPRESP", "Pre-specified", length=1),
    _v("SVOCCUR", "Occurrence", length=1),
    _v("SVREASOC", "Reason for Occur Value", length=200),
    _EPOCH,
    _v("SVSTDTC", "Start Date/Time of Visit", "date"),
    _v("SVENDTC", "End Date/Time of Visit", "date"),
    _v("SVSTDY", "Study Day of Start of Visit", "integer"),
    _v("SVENDY", "Study Day of End of Visit", "integer"),
    _v("SVUPDES", "Description of Unplanned Visit", length=200),
)


def sv_record(study: Study, r) -> tuple:
    """SV record of one visit. The row provides ``site_code, subjid, visitnum, visit, kind,
    status, status_reason, actual_date, target_date, day0, treatment_stop_date``."""
    planned = r.kind != "unscheduled"
    occurred = r.actual_date is not None
    on = r.actual_date
    return (
        study.study_id, "SV", usubjid(study.study_id, r.site_code, r.subjid),
        visit_number(r.visitnum), r.visit, "Y" if planned else None,
        ("Y" if occurred else "N") if planned else None,
        (r.status_reason or None) if planned and not occurred else None,
        epoch(on or r.target_date, r.day0, r.treatment_stop_date),
        iso_date(on), iso_date(on), study_day(on, r.day0), study_day(on, r.day0),
        None if planned else (r.status_reason or "UNSCHEDULED VISIT"),
    )


DS_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("DSSEQ", "Sequence Number", "integer", key=3),
    _v("DSTERM", "Reported Term for the Disposition Event", length=200),
    _v("DSDECOD", "Standardized Disposition Term", length=200),
    _v("DSCAT", "Category for Disposition Event", length=40),
    _v("DSSCAT", "Subcategory for Disposition Event", length=40),
    _EPOCH,
    _v("DSSTDTC", "Start Date/Time of Disposition Event", "date"),
    _v("DSSTDY", "Study Day of Start of Disposition Event", "integer"),
)

#: trialdesk reasons -> CDISC CT NCOMPLT (C66727). ``end_of_study`` is not mapped: "the study
#: ended" does not say whether the subject completed, so a human records the coding.
NCOMPLT = {
    "completed": "COMPLETED", "progression": "PROGRESSIVE DISEASE", "death": "DEATH",
    "withdrawal_of_consent": "WITHDRAWAL BY SUBJECT", "lost_to_follow_up": "LOST TO FOLLOW-UP",
    "investigator_decision": "PHYSICIAN DECISION", "intolerable_toxicity": "ADVERSE EVENT",
}
MILESTONE, DISPOSITION = "PROTOCOL MILESTONE", "DISPOSITION EVENT"


class DsMapper:
    """DS records of one subject (module doc). The row provides ``site_code, subjid,
    consent_date, enrolled_on, status, status_date, status_reason, treatment_stop_date,
    treatment_stop_reason, day0``; ``randomized``: the trial allocates at random."""

    variables = DS_VARIABLES
    expands = True

    def __init__(self, study: Study, randomized: bool):
        self.study_id = study.study_id
        self.randomized = randomized

    def __call__(self, r) -> Iterator[tuple]:
        subject = usubjid(self.study_id, r.site_code, r.subjid)
        events = [("INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", MILESTONE, None,
                   r.consent_date)]
        if self.randomized and r.enrolled_on:
            events.append(("RANDOMIZED", "RANDOMIZED", MILESTONE, None, r.enrolled_on))
        if r.status == lifecycle.SCREEN_FAILURE:
            events.append((r.status_reason or "SCREEN FAILURE", "SCREEN FAILURE", DISPOSITION,
                           "STUDY PARTICIPATION", r.status_date))
        if r.treatment_stop_date:
            events.append((r.treatment_stop_reason,
                           mapped("DSDECOD", NCOMPLT, r.treatment_stop_reason), DISPOSITION,
                           "STUDY TREATMENT", r.treatment_stop_date))
        if r.status == lifecycle.OFF_STUDY:
            events.append((r.status_reason, mapped("DSDECOD", NCOMPLT, r.status_reason),
                           DISPOSITION, "STUDY PARTICIPATION", r.status_date))
        for seq, (term, decod, cat, scat, on) in enumerate(events, 1):
            yield (self.study_id, "DS", subject, seq, term.upper() if term else decod, decod,
                   cat, scat, epoch(on, r.day0, r.treatment_stop_date) if on else None,
                   iso_date(on), study_day(on, r.day0))


IE_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("IESEQ", "Sequence Number", "integer", key=3),
    _v("IETESTCD", "Inclusion/Exclusion Criterion Short Name", length=8),
    _v("IETEST", "Inclusion/Exclusion Criterion", length=200),
    _v("IECAT", "Inclusion/Exclusion Category", length=9),
    _v("IEORRES", "I/E Criterion Original Result", length=1),
    _v("IESTRESC", "I/E Criterion Result in Std Format", length=1),
    _EPOCH,
    _v("IEDTC", "Date/Time of Collection", "date"),
)


def criterion_code(kind: str, number: int) -> str:
    """IETESTCD / TI IETESTCD of a criterion: ``IN01``, ``EX12``."""
    return f"{'IN' if kind == 'inclusion' else 'EX'}{number:02d}"


def short_text(text: str, limit: int = 200) -> str:
    """A criterion text within ``limit`` bytes of UTF-8 (" ..." marks a shortened one): the
    200 of a SAS XPORT v5 character value, which are 200 characters for ASCII text only."""
    text = " ".join(text.split())
    return text if len(text.encode("utf-8")) <= limit else clip(text, limit - 4).rstrip() + " ..."


def ie_record(study: Study, r) -> tuple:
    """IE record of one criterion not met. The row provides ``site_code, subjid, seq, kind,
    number, text``; an inclusion not met has IEORRES "N", an exclusion present "Y"."""
    result = "N" if r.kind == "inclusion" else "Y"
    return (study.study_id, "IE", usubjid(study.study_id, r.site_code, r.subjid), r.seq,
            criterion_code(r.kind, r.number), short_text(r.text), r.kind.upper(), result,
            result, "SCREENING", None)


TS_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _v("TSSEQ", "Sequence Number", "integer", key=3),
    _v("TSPARMCD", "Trial Summary Parameter Short Name", length=8, key=2),
    _v("TSPARM", "Trial Summary Parameter", length=40),
    _v("TSVAL", "Parameter Value", length=200),
    _v("TSVALCD", "Parameter Value Code", length=20),
    _v("TSVCDREF", "Name of the Reference Terminology", length=20),
    _v("TSVCDVER", "Version of the Reference Terminology", length=20),
)
#: Protocol file phase -> CDISC CT TPHASE (C66737) value.
PHASES = {"early_phase1": "PHASE 0 TRIAL", "phase1": "PHASE I TRIAL",
          "phase1_2": "PHASE I/II TRIAL", "phase2": "PHASE II TRIAL",
          "phase2_3": "PHASE II/III TRIAL", "phase3": "PHASE III TRIAL",
          "phase4": "PHASE IV TRIAL"}
BLINDING = {"none": "OPEN LABEL", "double": "DOUBLE BLIND"}


class TsMapper:
    """TS records of a trial (module doc). The row is the trial (``title, registry,
    registry_id, sponsor, phase, target_enrollment, start_date, masking, allocation``);
    ``arms`` and ``treatments`` come from its current protocol version (treatment names as
    the user may see them: a blinded user sees masking groups)."""

    variables = TS_VARIABLES
    expands = True

    def __init__(self, study: Study, arms: int, treatments: list[str]):
        self.study_id = study.study_id
        self.arms = arms
        self.treatments = treatments

    def __call__(self, r) -> Iterator[tuple]:
        ct = ("CDISC CT", terminology.CT_VERSION)
        params = [("TITLE", "Trial Title", r.title, None, None)]
        if r.registry == "ctgov":
            params.append(("REGID", "Registry Identifier", r.registry_id, r.registry_id,
                           ("ClinicalTrials.gov", None)))
        if r.sponsor:
            params.append(("SPONSOR", "Clinical Study Sponsor", r.sponsor, None, None))
        if r.phase:
            params.append(("TPHASE", "Trial Phase Classification",
                           mapped("TSVAL", PHASES, r.phase), None, ct))
        if r.target_enrollment:
            params.append(("PLANSUB", "Planned Number of Subjects", str(r.target_enrollment),
                           None, None))
        params.append(("TBLIND", "Trial Blinding Schema", mapped("TSVAL", BLINDING, r.masking),
                       None, ct))
        if r.allocation in ("randomized", "non_randomized"):
            params.append(("RANDOM", "Trial is Randomized",
                           "Y" if r.allocation == "randomized" else "N", None, ct))
        params.append(("NARMS", "Planned Number of Arms", str(self.arms), None, None))
        if r.start_date:
            params.append(("SSTDTC", "Study Start Date", iso_date(r.start_date), None, None))
        params.append(("STYPE", "Study Type", "INTERVENTIONAL", None, ct))
        params += [("TRT", "Investigational Therapy or Treatment", name, None, None)
                   for name in self.treatments]
        seen: dict[str, int] = {}
        for code, name, value, value_code, ref in params:
            seen[code] = seen.get(code, 0) + 1
            yield (self.study_id, "TS", seen[code], code, name, clip(value), value_code,
                   ref[0] if ref else None, ref[1] if ref else None)


#: Every SDTM domain exported, in catalogue order.
DOMAINS = {
    "SV": ("Subject Visits", SV_VARIABLES),
    "DS": ("Disposition", DS_VARIABLES),
    "IE": ("Inclusion/Exclusion Criteria Not Met", IE_VARIABLES),
    "TS": ("Trial Summary", TS_VARIABLES),
}
