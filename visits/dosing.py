"""Response and dose-unit checks (pure Python) over the shared vocabularies
(``trials.vocabulary``: response categories per criteria, dose units and their totals)."""

from __future__ import annotations

from trials.vocabulary import CONFIRMED_PROGRESSION, RESPONSE_CODES, UNIT_TOTALS

__all__ = ["CONFIRMED_PROGRESSION", "RESPONSE_CODES", "UNIT_TOTALS", "check_response"]


def check_response(criteria: str, response: str) -> None:
    """Raise ``ValueError`` when ``response`` is not a category of ``criteria``."""
    codes = RESPONSE_CODES.get(criteria)
    if codes is None:
        raise ValueError(f"unknown response criteria {criteria!r}; "
                         f"use one of {', '.join(RESPONSE_CODES)}")
    if response not in codes:
        raise ValueError(f"{response!r} is not a {criteria} response; "
                         f"use one of {', '.join(sorted(codes))}")
