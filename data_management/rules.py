"""Edit-check rules: values that are allowed but suspicious, so a query asks the site to confirm.

Pure Python (no Django). ``data_management.edit_checks`` applies them to the records of a
subject and opens system queries (ICH E6(R3) 3.16.1: data checked for errors and omissions).

* ``out_of_window``: a visit done outside its protocol window (a deviation to document).
* ``weight_change``: body weight changed by more than 10 % between consecutive exposures
  (dose per kg / per m2 depends on it; a 10 % change is the usual re-calculation threshold).
* ``grade_jumps``: an adverse event whose CTCAE grade rises by 3 or more within one day
  (e.g. grade 1 -> 4 overnight), more often a transcription error than a clinical course.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

WEIGHT_CHANGE_LIMIT = Decimal("0.10")
GRADE_JUMP = 3
GRADE_JUMP_DAYS = 1


def out_of_window(actual: dt.date | None, low: dt.date | None, high: dt.date | None) -> bool:
    if actual is None or low is None or high is None:
        return False
    return not (low <= actual <= high)


def weight_change(previous: Decimal, current: Decimal) -> Decimal:
    """Relative change of ``current`` against ``previous`` (0.12 = 12 %)."""
    if previous <= 0:
        raise ValueError("the previous weight must be positive")
    return abs(Decimal(current) - Decimal(previous)) / Decimal(previous)


def weight_changes(weights: Sequence[Decimal | None],
                   limit: Decimal = WEIGHT_CHANGE_LIMIT) -> list[int]:
    """Indexes of weights that differ by more than ``limit`` from the previous known weight."""
    flagged, previous = [], None
    for index, weight in enumerate(weights):
        if weight is None:
            continue
        if previous is not None and previous > 0 and weight_change(previous, weight) > limit:
            flagged.append(index)
        previous = weight
    return flagged


def grade_jumps(episodes: Sequence[tuple[dt.date, int]], jump: int = GRADE_JUMP,
                within_days: int = GRADE_JUMP_DAYS) -> list[int]:
    """Indexes of grade episodes (``(start, grade)``, in order) that rise by ``jump`` or more
    over the previous episode within ``within_days`` days of its start."""
    flagged = []
    for index in range(1, len(episodes)):
        (start0, grade0), (start1, grade1) = episodes[index - 1], episodes[index]
        if grade1 - grade0 >= jump and 0 <= (start1 - start0).days <= within_days:
            flagged.append(index)
    return flagged
