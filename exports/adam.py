"""ADaM ADQS and ADTTE of the EORTC QLQ-C30 results the EDC computes (plain Python).

CDISC ADaM IG v1.3 (Basic Data Structure, section 3) and the ADaM Structure for Occurrence
... / "ADaM Basic Data Structure for Time-to-Event Analyses" (ADTTE, v1.0):

* **ADQS** (BDS): one record per form and QLQ-C30 scale (``visits.qlq_c30.SCALES``, EORTC
  QLQ-C30 Scoring Manual 3rd ed.; SUM per Giesinger 2016). PARAMCD is the scale code, AVAL
  its score (0-100, unrounded), ADT the completion date. The baseline is the system's: the
  subject's earliest scored form (``visits.qlq_c30.time_to_deterioration``); ABLFL "Y" on
  it where the scale has a score, BASE its score, CHG = AVAL - BASE after it.
* **ADTTE**: one record per subject and scale, copied from the system's time to confirmed
  deterioration (``visits.models.QlqC30Deterioration``: >= 10 points worse than baseline at
  two consecutive scored assessments): PARAMCD ``TTD<scale>``, STARTDT the time origin
  (``visits.services.start_date_of``: enrollment, else day 0, else consent), ADT the event or
  censoring date, AVAL the days between, CNSR 0 for an event and 1 when censored (ADTTE
  convention), EVNTDESC / CNSDTDSC saying which.

TRTP is the arm as the user may see it (``exports.blinding``): a blinded user gets the
neutral label, never the true arm. Dates are ISO 8601 character values (as in SDTM); the
numeric SAS dates ADaM prefers are left to the sponsor's analysis programs.
"""

from __future__ import annotations

from collections.abc import Iterator

from visits.qlq_c30 import SCALE_NAMES, SCALES

from .sdtm import ArmView, Study, Variable, _v, iso_date, study_day, usubjid, visit_number

_STUDY = _v("STUDYID", "Study Identifier", length=40, key=1)
_USUBJID = _v("USUBJID", "Unique Subject Identifier", length=102, key=2)
_SITEID = _v("SITEID", "Study Site Identifier", length=20)
_TRTP = _v("TRTP", "Planned Treatment", length=200)
CATEGORY = "EORTC QLQ-C30 V3.0"

ADQS_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _USUBJID, _SITEID, _TRTP,
    _v("PARCAT1", "Parameter Category 1", length=40),
    _v("PARAMCD", "Parameter Code", length=8, key=3),
    _v("PARAM", "Parameter", length=200),
    _v("AVISIT", "Analysis Visit", length=40),
    _v("AVISITN", "Analysis Visit (N)", "double"),
    _v("ADT", "Analysis Date", "date", key=4),
    _v("ADY", "Analysis Relative Day", "integer"),
    _v("AVAL", "Analysis Value", "double"),
    _v("BASE", "Baseline Value", "double"),
    _v("CHG", "Change from Baseline", "double"),
    _v("ABLFL", "Baseline Record Flag", length=1),
)


def param(scale: str) -> str:
    return f"{CATEGORY} {SCALE_NAMES[scale]}"


class AdqsMapper:
    """ADQS records of one form. The row provides ``id, site_code, subjid, arm_id,
    completion_date, visitnum, visit, day0``, the scale scores (``QL2`` .. ``SUM``, lower
    case) and, per scale, ``base_<scale>`` (the baseline form's score) and ``base_form`` /
    ``base_date`` (the baseline form's id and date)."""

    variables = ADQS_VARIABLES
    expands = True

    def __init__(self, study: Study, arms: dict[int, ArmView]):
        self.study_id = study.study_id
        self.arms = arms

    def __call__(self, r) -> Iterator[tuple]:
        arm = self.arms.get(r.arm_id) if r.arm_id is not None else None
        subject = usubjid(self.study_id, r.site_code, r.subjid)
        adt, ady = iso_date(r.completion_date), study_day(r.completion_date, r.day0)
        is_base, after = r.id == r.base_form, r.completion_date > r.base_date
        for scale in SCALES:
            value = getattr(r, scale.lower())
            base = getattr(r, f"base_{scale.lower()}")
            chg = value - base if after and value is not None and base is not None else None
            yield (self.study_id, subject, r.site_code, arm.label if arm else None, CATEGORY,
                   scale, param(scale), r.visit, visit_number(r.visitnum), adt, ady, value,
                   base, chg, "Y" if is_base and value is not None else None)


ADTTE_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _USUBJID, _SITEID, _TRTP,
    _v("PARAMCD", "Parameter Code", length=8, key=3),
    _v("PARAM", "Parameter", length=200),
    _v("STARTDT", "Time-to-Event Origin Date for Subject", "date"),
    _v("ADT", "Analysis Date", "date"),
    _v("AVAL", "Analysis Value", "integer"),
    _v("AVALU", "Analysis Value Unit", length=4),
    _v("CNSR", "Censor", "integer"),
    _v("EVNTDESC", "Event or Censoring Description", length=200),
    _v("CNSDTDSC", "Censor Date Description", length=200),
)
EVENT = "CONFIRMED DETERIORATION (10 POINTS OR MORE AT 2 CONSECUTIVE ASSESSMENTS)"


def adtte_record(study: Study, arms: dict[int, ArmView], r) -> tuple:
    """ADTTE record of one subject and scale. The row provides ``site_code, subjid, arm_id,
    start_date, scale, event, event_date, censor_date, days``."""
    arm = arms.get(r.arm_id) if r.arm_id is not None else None
    if r.event:
        adt, cnsr, describe, censor = r.event_date, 0, EVENT, None
    elif r.days == 0 and r.censor_date == r.start_date:
        adt, cnsr, describe, censor = r.censor_date, 1, "CENSORED", "NO BASELINE SCORE"
    else:
        adt, cnsr, describe, censor = r.censor_date, 1, "CENSORED", "LAST SCORED ASSESSMENT"
    return (study.study_id, usubjid(study.study_id, r.site_code, r.subjid), r.site_code,
            arm.label if arm else None, f"TTD{r.scale}",
            f"Time to deterioration of {SCALE_NAMES[r.scale]} (days)",
            iso_date(r.start_date), iso_date(adt), r.days, "DAYS", cnsr, describe, censor)


DATASETS = {
    "ADQS": ("QLQ-C30 Scale Scores Analysis Dataset", ADQS_VARIABLES),
    "ADTTE": ("QLQ-C30 Time to Deterioration Analysis", ADTTE_VARIABLES),
}
