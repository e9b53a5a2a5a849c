"""What a user may see of treatment allocation in an export (pure Python, no Django).

The rule is the one of ``trials.masking.arm_label``: in a blinded trial (``masking`` not
"none") a user without unblinded access (``Membership.unblinded``; admins have it) sees one
allocation for every subject, ``Blinded`` (``trials.blinding.BLINDED_ARM``), never an arm's
label, code or a per-arm neutral label. Exports add what an arm label alone does not cover
(ICH E9 2.3.1: blinding extends to every record that could reveal the allocation):

* ARM is ``Blinded`` and ARMCD ``BLINDED`` for every subject;
* an intervention and its matching placebo (``Intervention.placebo_for``) are shown alike as
  their masking group (``trials.blinding``), with no dose or unit (a placebo's recorded dose
  could tell them apart); attributions to either are merged into one, the worst level.
"""

from __future__ import annotations

from dataclasses import dataclass

from trials.blinding import BLINDED_ARM, blinded_code, blinded_name, masking_groups

from .sdtm import ArmView, TreatmentView, code_from_label, dose_form, worst_level


@dataclass(frozen=True)
class ArmInfo:
    id: int
    code: str
    label: str


@dataclass(frozen=True)
class InterventionInfo:
    id: int
    code: str
    agent: str
    route: str
    placebo_for: str
    cell_product: bool = False


def arm_views(arms: list[ArmInfo], visible: bool) -> dict[int, ArmView]:
    """ARMCD/ARM per arm id: the true ones when ``visible``, else ``Blinded`` for every arm."""
    blinded = ArmView(code_from_label(BLINDED_ARM), BLINDED_ARM)
    return {arm.id: ArmView(arm.code, arm.label) if visible else blinded for arm in arms}


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
