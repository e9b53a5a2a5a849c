"""The export catalogue: every dataset x format of a trial, as the user may pull it.

One list for the API (``GET /api/v1/exports/catalogue/?trial=``) and the admin page: each
dataset, its formats, the URL that streams it and the background request that produces it
as a file (Celery, progress, export record). Scope and blinding are those of any export
(``exports.services``): a trial outside the user's memberships is refused, and the entry says
whether true arms and birth dates will be shown.
"""

from __future__ import annotations

from django.urls import reverse

from edc.core import roles

from .models import FORMATS, Dataset, Format

#: dataset -> (API route name, route kwargs)
ROUTES = {
    Dataset.AE_LISTING: ("export-ae-listing-list", {}),
    Dataset.AE_INCIDENCE: ("export-summary-ae-incidence", {}),
    Dataset.DLT_SUMMARY: ("export-summary-dlt", {}),
    Dataset.DEFINE_XML: ("export-document-define-xml", {}),
    Dataset.ODM: ("export-document-odm", {}),
}
#: SDTM domain (URL part) -> dataset, for ``/exports/sdtm/<domain>/``.
DOMAIN_DATASETS = {"ae": Dataset.SDTM_AE, "suppae": Dataset.SDTM_SUPPAE, "ex": Dataset.SDTM_EX,
                   "qs": Dataset.SDTM_QS, "dm": Dataset.SDTM_DM, "sv": Dataset.SDTM_SV,
                   "ds": Dataset.SDTM_DS, "ie": Dataset.SDTM_IE, "ts": Dataset.SDTM_TS,
                   "rs": Dataset.SDTM_RS, "adqs": Dataset.ADAM_ADQS, "adtte": Dataset.ADAM_ADTTE,
                   "dv": Dataset.SDTM_DV, "tu": Dataset.SDTM_TU, "tr": Dataset.SDTM_TR,
                   "te": Dataset.SDTM_TE, "ta": Dataset.SDTM_TA, "tv": Dataset.SDTM_TV,
                   "ti": Dataset.SDTM_TI}
SDTM_ROUTE = "export-sdtm-detail"


def _url(dataset: str, fmt: str, trial_id: int) -> str:
    if dataset in ROUTES:
        name, kwargs = ROUTES[dataset]
        url = reverse(name, kwargs=kwargs)
    else:
        domain = next(d for d, ds in DOMAIN_DATASETS.items() if ds == dataset)
        url = reverse(SDTM_ROUTE, kwargs={"domain": domain})
    query = f"?trial={trial_id}"
    if fmt != Format.XML:
        query += f"&output={fmt}"
    return url + query


def catalogue(user, trial, site_ids) -> dict:
    """Every dataset x format of ``trial`` for ``user`` (already scoped to ``site_ids``)."""
    unblinded = not trial.is_blinded or roles.can_see_unblinded(user, trial)
    return {
        "trial": trial.pk, "study_id": trial.registry_id, "site_ids": list(site_ids),
        "unblinded": unblinded, "birth_dates": roles.sees_birth_dates(user),
        "background": reverse("export-record-list"),
        "datasets": [
            {"dataset": dataset, "label": Dataset(dataset).label,
             "formats": [{"format": fmt, "label": Format(fmt).label,
                          "url": _url(dataset, fmt, trial.pk)}
                         for fmt in formats]}
            for dataset, formats in FORMATS.items()],
    }
