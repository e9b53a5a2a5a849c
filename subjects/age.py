"""Age in completed years at a date (pure Python, no Django).

SDTMIG 3.4 DM: AGE is the age at RFSTDTC or, as here, at informed consent (RFICDTC), in
completed years (AGEU "YEARS"); the protocol's age criteria are checked at consent too.
A birthday is reached when the (month, day) of the date is not before the birth (month, day):
someone born on 29 February reaches each new year on 1 March in common years (the usual
"completed years" rule, as SAS ``INTCK('YEAR', birth, date, 'C')``).
"""

from __future__ import annotations

import datetime as dt


def completed_years(birth: dt.date, on: dt.date) -> int:
    """Whole years from ``birth`` to ``on`` (0 on the day of birth)."""
    years = on.year - birth.year
    return years - ((on.month, on.day) < (birth.month, birth.day))
