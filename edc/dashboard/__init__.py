"""Per-trial dashboard in the admin: enrollment, overdue visits, open SAEs past their clock,
DLT/TI per dose level with the dose-finding recommendation, and data-management status.

Served by ``trials.admin.TrialAdmin`` at ``/admin/trials/trial/<id>/dashboard/`` (and the list
of dashboards at ``/admin/trials/trial/dashboards/``), so it sits behind the admin login and
uses the admin's templates; no line in ``edc/urls.py`` is needed.

Scoping and blinding follow the API: enrollment, visits and SAEs are counted over the user's
own sites (``edc.core.roles.scope``) and show the blinded arm label to blinded users. Dose-finding
outcomes are trial-wide by nature (the next cohort's dose depends on every site's subjects);
they are aggregate counts per dose level and name no subject.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.module_loading import import_string

from edc.core import roles
from edc.core.admin import blinded_for
from trials.blinding import BLINDED_ARM

logger = logging.getLogger(__name__)

STATUS_ORDER = ("screening", "screen_failure", "enrolled", "on_treatment", "follow_up",
                "off_study")
#: Statuses that count as enrolled (allocated).
ENROLLED = ("enrolled", "on_treatment", "follow_up", "off_study")


def enrollment_rows(trial, user) -> tuple[list[dict], dict[str, int]]:
    """Subjects per allocation x cohort x dose level, by status; users blinded to the trial
    see one allocation, ``Blinded``, counted over every arm (``trials.blinding``)."""
    from subjects.models import Subject

    subjects = roles.scope(Subject.objects.filter(trial=trial, retired_at__isnull=True), user)
    blinded = blinded_for(user, trial)
    counts = subjects.values("arm__label", "arm__sequence", "cohort",
                             "dose_level__code", "dose_level__order", "status").annotate(
        n=Count("pk"))
    cells: dict[tuple, dict] = {}
    totals: dict[str, int] = defaultdict(int)
    for row in counts:
        if row["arm__label"] is None:
            label = "not allocated"
        else:
            label = BLINDED_ARM if blinded else row["arm__label"]
        key = (0 if blinded else row["arm__sequence"] or 0, label, row["cohort"] or 0,
               row["dose_level__order"] if row["dose_level__order"] is not None else -1,
               row["dose_level__code"] or "")
        cell = cells.setdefault(key, {"allocation": label, "cohort": row["cohort"],
                                      "dose_level": row["dose_level__code"] or "",
                                      "by_status": defaultdict(int), "total": 0})
        cell["by_status"][row["status"]] += row["n"]
        cell["total"] += row["n"]
        totals[row["status"]] += row["n"]
    rows = []
    for key in sorted(cells, key=lambda k: (k[1] == "not allocated", k)):
        cell = cells[key]
        cell["statuses"] = [cell["by_status"].get(s, 0) for s in STATUS_ORDER]
        rows.append(cell)
    return rows, {s: totals.get(s, 0) for s in STATUS_ORDER}


def overdue_visits(trial, user, limit: int = 50) -> tuple[list, int]:
    from visits.models import Visit

    visits = roles.scope(Visit.objects.filter(subject__trial=trial).overdue(),
                         user, trial="subject__trial", site="subject__site")
    today = timezone.localdate()
    shown = list(visits.select_related("subject__site").order_by("window_high", "pk")[:limit])
    for visit in shown:
        visit.days_overdue = (today - visit.window_high).days if visit.window_high else None
    return shown, visits.count()


def open_saes(trial, user) -> tuple[list, int]:
    """Serious AEs not reported 24 h after awareness (overdue) and the count still due."""
    from adverse_events.models import AdverseEvent
    from adverse_events.toxicity import SAE_REPORT_WINDOW

    now = timezone.now()
    overdue = roles.scope(AdverseEvent.objects.sae_status("overdue", now=now).filter(
        subject__trial=trial), user, trial="subject__trial", site="subject__site")
    rows = list(overdue.select_related("subject__site", "term").order_by("aware_at"))
    for ae in rows:
        ae.due_at = ae.aware_at + SAE_REPORT_WINDOW
        ae.hours_late = int((now - ae.due_at).total_seconds() // 3600)
    due = roles.scope(AdverseEvent.objects.sae_status("due", now=now).filter(
        subject__trial=trial), user, trial="subject__trial", site="subject__site").count()
    return rows, due


def dose_finding(trial) -> dict:
    """The dose-finding recommendation with the state behind it (cohorts, evaluable subjects,
    flags, deaths, rule and source), as ``settings.SUBJECTS_DOSE_ADVISOR`` gives it (the rule
    enrollment follows)."""
    recommend = import_string(settings.SUBJECTS_DOSE_ADVISOR)
    try:
        data = recommend(trial)
    except Exception as exc:  # a protocol or data problem must not take the dashboard down
        logger.exception("dose-finding recommendation failed for %s", trial.registry_id)
        return {"recommendation": None,
                "unavailable": f"The recommendation could not be computed: {exc}"}
    if data.get("action") == "not_applicable":
        return {"recommendation": None, "unavailable": data["explanation"]}
    basis = data.get("basis")
    return {"recommendation": data, "unavailable": None,
            "basis": sorted(basis.items()) if isinstance(basis, dict) else basis}


def data_status(trial, user) -> dict:
    """``data_management.status.trial_data_status`` limited to the sites the user reaches."""
    from data_management.status import trial_data_status
    from subjects.models import Membership, Site

    status = trial_data_status(trial)
    trial_wide = roles.is_admin(user) or Membership.objects.filter(
        user=user, trial=trial, site__isnull=True).exists()
    if not trial_wide:
        mine = set(roles.scope(Site.objects.filter(trial=trial), user, site="pk")
                   .values_list("code", flat=True))
        status["queries"]["unresolved_by_site"] = {
            code: n for code, n in status["queries"]["unresolved_by_site"].items()
            if code in mine}
    return status


def epro_completion(trial, user) -> list[dict]:
    """ePRO completion of the scheduled QLQ-C30s per visit, over the user's sites
    (``epro.services.completion_by_visit``); empty for trials that schedule none."""
    from epro.services import completion_by_visit
    from visits.models import Visit

    visits = roles.scope(Visit.objects.filter(subject__trial=trial), user,
                         trial="subject__trial", site="subject__site")
    rows = completion_by_visit(visits)
    for row in rows:
        done = row["patient"] + row["staff"]
        row["percent"] = round(100 * done / row["scheduled"]) if row["scheduled"] else None
    return rows


def dashboard_context(trial, user) -> dict:
    enrollment, totals = enrollment_rows(trial, user)
    visits, visits_total = overdue_visits(trial, user)
    saes, saes_due = open_saes(trial, user)
    status = data_status(trial, user)
    return {
        "trial": trial,
        "blinded": blinded_for(user, trial),
        "enrollment": enrollment,
        "status_order": [s.replace("_", " ") for s in STATUS_ORDER],
        "status_totals": [totals[s] for s in STATUS_ORDER],
        "enrolled_total": sum(totals[s] for s in ENROLLED),
        "overdue_visits": visits,
        "overdue_visits_total": visits_total,
        "overdue_saes": saes,
        "saes_due": saes_due,
        "dose_finding": dose_finding(trial),
        "epro": epro_completion(trial, user),
        "dm": status,
        "dm_sections": [
            ("Queries", {k: v for k, v in status["queries"].items() if not isinstance(v, dict)}),
            ("Unresolved queries by age (days)", status["queries"]["unresolved_by_age_days"]),
            ("Unresolved queries by site", status["queries"]["unresolved_by_site"]),
            ("Source data verification", status["verifications"]),
            ("Signatures", status["signatures"]),
            ("Locks", {k: v for k, v in status["locks"].items()
                       if not isinstance(v, dict | bool)}),
        ],
        "administers_randomization": trial.is_randomized and roles.administers_randomization(
            user, trial),
        "as_of": timezone.now(),
        "scope_note": ("all sites" if roles.is_admin(user) else "the sites you have access to"),
    }


def trial_dashboard_view(model_admin, request, pk):
    trial = roles.scope(model_admin.model.objects.filter(pk=pk), request.user,
                        trial="pk", site=None).first()
    if trial is None:
        raise Http404("No such trial among yours.")
    if not model_admin.has_view_permission(request, trial):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        **dashboard_context(trial, request.user),
        "title": f"Dashboard: {trial.registry_id}",
        "subtitle": trial.title,
        "opts": model_admin.opts,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/edc/trial_dashboard.html", context)


def dashboards_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    trials = roles.scope(model_admin.model.objects.all(), request.user, trial="pk", site=None)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Trial dashboards",
        "trials": list(trials.order_by("registry_id")),
        "opts": model_admin.opts,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/edc/trial_dashboards.html", context)
