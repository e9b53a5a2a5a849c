"""Signals of the subjects app (the apps above it act on them; this app imports none of them).

``schedule_changed`` (sender ``Subject``; ``subject``, ``reason``, optional ``locked``): the
subject was enrolled or its status changed its plan (treatment stopped, death, withdrawal); sent
inside the writing transaction. ``locked=True`` (enrollment): ``subject`` is the sender's locked
instance with its new state not saved yet (saved right after, so that the audited writes come
last in the transaction); the receiver reads it as it is instead of from the database.
Receiver: ``visits.receivers`` rebuilds the subject's future visits.
"""

from django.dispatch import Signal

schedule_changed = Signal()
