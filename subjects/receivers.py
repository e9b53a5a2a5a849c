"""What the subjects app does when the apps below it change data (their signals)."""

from __future__ import annotations

from trials import protocol_schema as schema
from trials.models import Trial

from .enrollment import ensure_allocation_list, strata_of
from .models import Site


def sites_and_allocation_lists(sender, trial: Trial, protocol: schema.Protocol,
                               **kwargs) -> None:
    """``trials.signals.protocol_loaded``: the sites the file names, and (randomized trials)
    the concealed allocation lists before the first enrollment."""
    _save_sites(trial, protocol)
    if trial.is_randomized:
        for stratum in strata_of(trial):
            ensure_allocation_list(trial, stratum)


def _save_sites(trial: Trial, protocol: schema.Protocol) -> None:
    known = {site.name for site in trial.sites.all()}
    next_number = trial.sites.count() + 1
    for site in protocol.trial.sites:
        if site.name in known:
            continue
        Site.objects.create(trial=trial, code=f"{next_number:02d}", name=site.name,
                            city=site.city or "", country=site.country)
        next_number += 1
