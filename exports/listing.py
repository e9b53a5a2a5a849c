"""The sponsor AE listing: one row per adverse event (pure Python, no Django).

Grades are NCI CTCAE v5.0 (worst grade of the AE's grade episodes); seriousness criteria follow
ICH E2A II.B; attribution is per intervention (blinded users see active and matching placebo as
one, see ``exports.blinding``); DLT/TI are the effective flags of the protocol's toxicity rules
(the investigator's override when set, else the computed result): Y, N, or empty when the AE
was never evaluated by a rule of that kind.
"""

from __future__ import annotations

from .blinding import attribution_text
from .sdtm import ArmView, TreatmentView, parse_attributions, usubjid, yes_no

COLUMNS: tuple[tuple[str, str], ...] = (
    ("study_id", "Study"),
    ("site", "Site"),
    ("usubjid", "Subject (USUBJID)"),
    ("arm", "Arm"),
    ("dose_level", "Dose level"),
    ("cohort", "Cohort"),
    ("ae_seq", "AESEQ"),
    ("term", "CTCAE term"),
    ("verbatim_term", "Verbatim term"),
    ("soc", "System organ class"),
    ("meddra_code", "MedDRA code"),
    ("worst_grade", "Worst grade (CTCAE v5.0)"),
    ("onset_date", "Onset"),
    ("resolution_date", "Resolution"),
    ("ongoing", "Ongoing"),
    ("serious", "Serious"),
    ("seriousness_criteria", "Seriousness criteria"),
    ("expected", "Expected"),
    ("attribution", "Attribution"),
    ("action_taken", "Action taken"),
    ("outcome", "Outcome"),
    ("dlt", "DLT"),
    ("ti", "TI"),
)
NAMES = tuple(name for name, _ in COLUMNS)
LABELS = tuple(label for _, label in COLUMNS)

CRITERIA = (
    ("sae_death", "death"),
    ("sae_life_threatening", "life-threatening"),
    ("sae_hospitalization", "hospitalization"),
    ("sae_disability", "disability/incapacity"),
    ("sae_congenital_anomaly", "congenital anomaly"),
    ("sae_medically_important", "medically important"),
)
ACTION = {"dose_not_changed": "dose not changed", "dose_reduced": "dose reduced",
          "dose_increased": "dose increased", "drug_interrupted": "drug interrupted",
          "drug_withdrawn": "drug withdrawn", "not_applicable": "not applicable",
          "unknown": "unknown"}
OUTCOME = {"recovered": "recovered/resolved", "recovering": "recovering/resolving",
           "not_recovered": "not recovered/not resolved",
           "sequelae": "recovered/resolved with sequelae", "fatal": "fatal",
           "unknown": "unknown"}


class ListingMapper:
    """One listing row from one engine AE row (same row as ``sdtm.AeMapper`` reads, plus
    ``arm_id, dose_level_id, cohort, expected, dlt, ti``)."""

    variables = NAMES

    def __init__(self, study_id: str, arms: dict[int, ArmView], dose_levels: dict[int, str],
                 treatments: dict[int, TreatmentView]):
        self.study_id = study_id
        self.arms = arms
        self.dose_levels = dose_levels
        self.treatments = treatments
        self._attributions: dict[str | None, str] = {}

    def attribution(self, text: str | None) -> str:
        found = self._attributions.get(text)
        if found is None:
            found = attribution_text(parse_attributions(text), self.treatments)
            self._attributions[text] = found
        return found

    def __call__(self, r) -> tuple:
        arm = self.arms.get(r.arm_id) if r.arm_id is not None else None
        criteria = "; ".join(label for name, label in CRITERIA if getattr(r, name))
        return (
            self.study_id, r.site_code, usubjid(self.study_id, r.site_code, r.subjid),
            arm.label if arm else None,
            self.dose_levels.get(r.dose_level_id) if r.dose_level_id is not None else None,
            r.cohort, r.seq, r.term, r.verbatim_term or None, r.soc, r.meddra_code, r.grade,
            r.onset_date.isoformat(),
            r.resolution_date.isoformat() if r.resolution_date else None,
            "Y" if r.resolution_date is None else "N", "Y" if r.serious else "N",
            criteria or None, "Y" if r.expected else "N", self.attribution(r.attributions) or None,
            ACTION.get(r.action_taken), OUTCOME.get(r.outcome), yes_no(r.dlt), yes_no(r.ti),
        )
