"""What the visits app does when the apps below it change data (their signals)."""

from __future__ import annotations

from .services import regenerate_visits


def rebuild_schedule(sender, subject, reason: str = "schedule regenerated",
                     locked: bool = False, **kwargs) -> None:
    """``subjects.signals.schedule_changed``: materialise the subject's visits again."""
    regenerate_visits(subject, reason, locked=locked)
