"""Signals of the trials app (the apps above it act on them; this app imports none of them).

``protocol_loaded`` (sender ``Trial``; ``trial``, ``protocol``): a protocol file was loaded
(first version or amendment), inside the loading transaction. Receiver:
``subjects.receivers`` creates the sites the file names and the concealed allocation lists of
a randomized trial before its first enrollment.
"""

from django.dispatch import Signal

protocol_loaded = Signal()
