"""Which study products a blinded user must not tell apart (pure Python, no Django).

ICH E9 section 2.3.1: in a double-blind trial the treatment of each subject is concealed from
everyone involved in its conduct, so no record may reveal it, not only the arm label. A
matching placebo (``placebo_for`` in the protocol file) and the product it masks form one
*masking group*, named after the active product:

* a blinded user sees any member of a group as ``BLINDED:<active code>`` ("Blinded study
  treatment (<active> or matching placebo)"), in visits, exposures, attributions and exports;
* causality is assessed, blinded, against the study treatment as a whole (ICH E2A III.A.1:
  the investigator judges relatedness to the *investigational product*, which includes its
  comparator); an attribution to any member of a group is therefore recorded against the
  group, i.e. its active product, whatever the subject actually received;
* a matching placebo is labelled and prescribed like the product it masks, so its dose is
  entered in the active product's unit (a different unit would tell them apart);
* every subject carries one allocation label, ``BLINDED_ARM``: a neutral label per arm
  ("Treatment group A/B/C") is itself arm-distinguishing (one emergency unblinding, or the
  protocol file, would reveal every subject sharing the label).
"""

from __future__ import annotations

from collections.abc import Iterable

BLINDED_PREFIX = "BLINDED:"
#: The allocation every subject shows to a user blinded to its trial (API, admin, exports).
BLINDED_ARM = "Blinded"


def masking_groups(interventions: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{code: active code}`` for every intervention in a masking group.

    ``interventions`` are ``(code, placebo_for)`` pairs; interventions without a matching
    placebo are absent from the result (they are shown as they are).
    """
    groups: dict[str, str] = {}
    for code, placebo_for in interventions:
        if placebo_for:
            groups[code] = placebo_for
            groups[placebo_for] = placebo_for
    return groups


def blinded_code(active: str) -> str:
    """The code a blinded user sees for the masking group of ``active``."""
    return f"{BLINDED_PREFIX}{active}"


def blinded_name(active: str) -> str:
    """The name a blinded user sees for the masking group of ``active``."""
    return f"Blinded study treatment ({active} or matching placebo)"


def shown_code(code: str, groups: dict[str, str]) -> str:
    """``code`` as a blinded user sees it: its group's blinded code, or itself."""
    active = groups.get(code)
    return code if active is None else blinded_code(active)


#: What the admin shows a blinded user instead of any product name of a blinded trial.
BLINDED_PRODUCT = "study product (blinded)"
