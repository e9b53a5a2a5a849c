"""Every SDTM domain exported, in catalogue order: name -> (label, variables) (plain Python).

One registry for the API's domain list and Define-XML: the special-purpose, interventions,
events and findings domains (``exports.sdtm``, ``exports.sdtm_domains``), the oncology
domains (``exports.sdtm_tumours``) and the trial design domains (``exports.trial_design``).
"""

from __future__ import annotations

from . import sdtm, sdtm_domains, sdtm_tumours, trial_design

ALL_DOMAINS = {**sdtm.DOMAINS, **sdtm_domains.DOMAINS, **sdtm_tumours.DOMAINS,
               **trial_design.DOMAINS}
