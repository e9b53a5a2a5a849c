"""English pages: short dates and times in ISO 8601 order (2026-11-30, 2026-11-30 14:05), not
Django's US month/day order, which readers at non-US sites misread."""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
