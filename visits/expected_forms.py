"""Which case report forms a visit expects: the per-visit form metadata of the status matrix
(clinicedc's "required / keyed / not required"; REDCap's record status dashboard).

The rule follows the visit the schedule planned (``visits.scheduling``), nothing else:

* every visit expects its own record (date done, or missed with a reason);
* a visit with a planned product (``Visit.intervention``: infusions, injections, month
  visits) expects an exposure;
* an efficacy-assessment visit expects a tumour assessment (RECIST 1.1 / mRECIST / iRECIST);
* a visit the schedule puts a QLQ-C30 at (``qlq_c30_due``) expects a QLQ-C30 form.

A visit missed, not done or cancelled expects nothing more. Forms are named by model label
(``app_label.model``), as ``data_management.targets`` names them.
"""

from __future__ import annotations

VISIT = "visits.visit"
EXPOSURE = "visits.exposure"
TUMOUR_ASSESSMENT = "visits.tumourassessment"
QLQ_C30 = "visits.qlqc30form"
#: Visit statuses after which no form of the visit is expected.
NOTHING_EXPECTED = frozenset({"missed", "not_done", "cancelled"})


def expected_forms(visit) -> tuple[str, ...]:
    """The forms ``visit`` expects, the visit's own record first (see the module rule)."""
    if visit.status in NOTHING_EXPECTED:
        return (VISIT,)
    forms = [VISIT]
    if visit.intervention:
        forms.append(EXPOSURE)
    if visit.kind == "assessment":
        forms.append(TUMOUR_ASSESSMENT)
    if visit.qlq_c30_due:
        forms.append(QLQ_C30)
    return tuple(forms)
