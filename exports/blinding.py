"""What a user may see of treatment allocation in an export (pure Python, no Django).

The rule is the one of ``subjects.api.arm_label_for``: in a blinded trial (``masking`` not
"none") a user without unblinded access (``Membership.unblinded``; admins have it) sees the
arm's neutral ``blinded_label``, never its label or code. Exports add what an arm label alone
does not cover (ICH E9 2.3.1: blinding extends to every record that could reveal the
allocation):

* ARMCD becomes a code derived from the neutral label (``Treatment group A`` ->
  ``TREATMENTGROUPA``);
* an intervention and its matching placebo (``Intervention.placebo_for``) are shown alike as
  their masking group (``trials.blinding``), with no dose or unit (a placebo's recorded dose
  could tell them apart); attributions to either are merged into one, the worst level.
"""

from __future__ import annotations

from dataclasses import dataclass

from trials.blinding import blinded_code, blinded_name, masking_groups

from .sdtm import ArmView, TreatmentView, code_from_label, dose_form, worst_level

BLINDED_ARM = "Blinded"


@dataclass(frozen=True)
class ArmInfo:
    id: int
    code: str
    label: str
    blinded_label: str


@dataclass(frozen=True)
class InterventionInfo:
    id: int
    code: str
    agent: str
    route: str
    placebo_for: str
    cell_product: bool = False


def arm_views(arms: list[ArmInfo], visible: bool) -> dict[int, ArmView]:
    """ARMCD/ARM per arm id: the true ones when ``visible``, else the neutral label."""
    views = {}
    for arm in arms:
        if visible:
            views[arm.id] = ArmView(arm.code, arm.label)
        else:
            label = arm.blinded_label or BLINDED_ARM
            views[arm.id] = ArmView(code_from_label(label), label)
    return views


def treatment_views(interventions: list[InterventionInfo], visible: bool
                    ) -> dict[int, TreatmentView]:
    """How each intervention is shown in EX (and attributions in the AE listing)."""
    by_code = {i.code: i for i in interventions}
    masked = {} if visible else masking_groups((i.code, i.placebo_for) for i in interventions)
    views = {}
    for i in interventions:
        active = masked.get(i.code)
        if active is None:
            views[i.id] = TreatmentView(i.code, i.agent, i.route or None,
                                        form=dose_form(i.cell_product))
        else:
            shown = by_code.get(active, i)  # the group is shown as its active product
            views[i.id] = TreatmentView(blinded_code(active), blinded_name(active),
                                        shown.route or None, mask_dose=True,
                                        form=dose_form(shown.cell_product))
    return views


def attribution_text(pairs: tuple[tuple[int, str], ...],
                     treatments: dict[int, TreatmentView]) -> str:
    """``CODE: level; CODE: level`` for the AE listing, merging confounded interventions."""
    levels: dict[str, list[str]] = {}
    for intervention_id, level in pairs:
        view = treatments.get(intervention_id)
        code = view.code if view else str(intervention_id)
        levels.setdefault(code, []).append(level)
    return "; ".join(f"{code}: {worst_level(found)}" for code, found in sorted(levels.items()))
