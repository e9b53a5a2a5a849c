"""What the adverse-event app does when the apps below it change data (their signals)."""

from __future__ import annotations

from .services import queue_toxicity_evaluation


def exposure_reevaluates_toxicity(sender, exposure, **kwargs) -> None:
    """``visits.signals.exposure_changed``: exposures open toxicity windows, so the
    subject's DLT/TI flags are re-evaluated (queued through the outbox)."""
    queue_toxicity_evaluation(exposure.subject)
