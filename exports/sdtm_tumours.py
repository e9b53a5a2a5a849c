"""SDTM oncology domains TU, TR and RS (SDTMIG 3.4 section 6.3: Tumor/Lesion Identification,
Tumor/Lesion Results, Disease Response and Clin Classification), in plain Python.

What the EDC records of a tumour assessment (``visits.models.TumourAssessment``): its date and
visit, the imaging method (CT, MRI, PET-CT, other), the response criteria (RECIST 1.1,
mRECIST, iRECIST) and the investigator's overall response. It records no lesion: no lesion
identifier, location, target / non-target / new classification, diameter or lesion state.

* **TU** (one record per identified lesion per subject) and **TR** (one record per lesion
  measurement or assessment per visit): every record names a lesion (``--LNKID``) or a sum over
  lesions (TRTESTCD "SUMDIAM" with ``TRLNKGRP``), so no record can be written without
  inventing a lesion. Both datasets are exported with their Required and Expected variables
  and no records. Derivable per assessment, were there lesions: STUDYID, DOMAIN, USUBJID,
  ``--METHOD`` (the imaging method), ``--EVAL`` (INVESTIGATOR), VISITNUM, VISIT, EPOCH,
  ``--DTC``, ``--DY``. Not derivable (no lesion-level data): ``--SEQ`` (one per lesion
  record), ``--LNKID``, ``TRLNKGRP``, ``--TESTCD`` / ``--TEST`` (TUMIDENT; LDIAM, LPERP,
  SUMDIAM, TUMSTATE ...), ``--ORRES`` / ``--STRESC`` / ``TRSTRESN`` and their units, TULOC.
* **RS**: one record per recorded overall response (RSTESTCD "OVRLRESP", RSTEST "Overall
  Response"), RSCAT the response criteria in upper case, RSORRES = RSSTRESC the response as
  recorded (CDISC CT ONCRSR values, iRECIST's "iCR" .. "iCPD" included), RSEVAL INVESTIGATOR,
  VISITNUM / VISIT / EPOCH of the assessment visit (the VISITNUM of SV and TV). Target,
  non-target and new-lesion responses (TRGRESP, NTRGRESP, NEWLPROG) are not collected, so they
  are absent; RSLNKGRP, which ties a response to the TR records it was derived from, is absent
  because there are no TR records to tie it to.
"""

from __future__ import annotations

from .sdtm import Study, Variable, _v, epoch, iso_date, study_day, usubjid, visit_number

_STUDY = _v("STUDYID", "Study Identifier", length=40, key=1)
_DOMAIN = _v("DOMAIN", "Domain Abbreviation", length=2)
_USUBJID = _v("USUBJID", "Unique Subject Identifier", length=102, key=2)
_VISITNUM = _v("VISITNUM", "Visit Number", "double")
_VISIT = _v("VISIT", "Visit Name", length=40)
_EPOCH = _v("EPOCH", "Epoch", length=9)

TU_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("TUSEQ", "Sequence Number", "integer", key=3),
    _v("TULNKID", "Link ID", length=20),
    _v("TUTESTCD", "Tumor/Lesion ID Short Name", length=8),
    _v("TUTEST", "Tumor/Lesion ID Test Name", length=40),
    _v("TUORRES", "Tumor/Lesion ID Result", length=20),
    _v("TUSTRESC", "Tumor/Lesion ID Result Std. Format", length=20),
    _v("TULOC", "Location of the Tumor/Lesion", length=40),
    _v("TUMETHOD", "Method of Identification", length=20),
    _v("TUEVAL", "Evaluator", length=20),
    _VISITNUM, _VISIT, _EPOCH,
    _v("TUDTC", "Date/Time of Tumor/Lesion Identification", "date"),
    _v("TUDY", "Study Day of Tumor/Lesion Identification", "integer"),
)

TR_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("TRSEQ", "Sequence Number", "integer", key=3),
    _v("TRLNKGRP", "Link Group ID", length=20),
    _v("TRLNKID", "Link ID", length=20),
    _v("TRTESTCD", "Tumor/Lesion Assessment Short Name", length=8),
    _v("TRTEST", "Tumor/Lesion Assessment Test Name", length=40),
    _v("TRORRES", "Result or Finding in Original Units", length=20),
    _v("TRORRESU", "Original Units", length=10),
    _v("TRSTRESC", "Character Result/Finding in Std Format", length=20),
    _v("TRSTRESN", "Numeric Result/Finding in Standard Units", "double"),
    _v("TRSTRESU", "Standard Units", length=10),
    _v("TRMETHOD", "Method Used to Identify the Tumor/Lesion", length=20),
    _v("TREVAL", "Evaluator", length=20),
    _VISITNUM, _VISIT, _EPOCH,
    _v("TRDTC", "Date/Time of Tumor/Lesion Measurement", "date"),
    _v("TRDY", "Study Day of Tumor/Lesion Measurement", "integer"),
)

RS_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _USUBJID, _v("RSSEQ", "Sequence Number", "integer", key=3),
    _v("RSTESTCD", "Assessment Short Name", length=8),
    _v("RSTEST", "Assessment Name", length=40),
    _v("RSCAT", "Category for Assessment", length=20),
    _v("RSORRES", "Result or Finding in Original Units", length=5),
    _v("RSSTRESC", "Character Result/Finding in Std Format", length=5),
    _v("RSEVAL", "Evaluator", length=20),
    _VISITNUM, _VISIT, _EPOCH,
    _v("RSDTC", "Date/Time of Assessment", "date"),
    _v("RSDY", "Study Day of Assessment", "integer"),
)


def rs_record(study: Study, r) -> tuple:
    """RS record of one recorded overall response (module doc). The row provides
    ``site_code, subjid, seq, criteria, overall_response, assessment_date, visitnum, visit,
    day0, treatment_stop_date``."""
    on = r.assessment_date
    return (study.study_id, "RS", usubjid(study.study_id, r.site_code, r.subjid), r.seq,
            "OVRLRESP", "Overall Response", r.criteria.upper(), r.overall_response,
            r.overall_response, "INVESTIGATOR", visit_number(r.visitnum), r.visit,
            epoch(on, r.day0, r.treatment_stop_date), iso_date(on), study_day(on, r.day0))


DOMAINS = {
    "TU": ("Tumor/Lesion Identification", TU_VARIABLES),
    "TR": ("Tumor/Lesion Results", TR_VARIABLES),
    "RS": ("Disease Response", RS_VARIABLES),
}
