"""Signals of the visits app, so that the apps above it act on visit data without this app
importing them (dependencies run one way: trials -> subjects -> visits -> adverse events and
data management).

``exposure_changed`` (sender ``Exposure``; ``exposure``, ``user``, ``resolution``): an exposure
was recorded, corrected or retired; sent inside the writing transaction, so that what the
receivers write (deviations with their queries, the DLT/TI re-evaluation queued through the
outbox) commits or rolls back with it. Receivers: ``data_management.receivers`` and
``adverse_events.receivers``.
"""

from django.dispatch import Signal

exposure_changed = Signal()
