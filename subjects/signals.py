"""Signals of the subjects app (the apps above it act on them; this app imports none of them).

``schedule_changed`` (sender ``Subject``; ``subject``, ``reason``): the subject was enrolled or
its status changed its plan (treatment stopped, death, withdrawal); sent inside the writing
transaction. Receiver: ``visits.receivers`` rebuilds the subject's future visits.
"""

from django.dispatch import Signal

schedule_changed = Signal()
