"""The data manager's trial-wide admin pages, linked from the trial dashboard and wired into
the admin site by ``edc.dashboard.site`` (as the dashboard is), behind the admin log-in:

* ``/admin/trials/trial/<id>/status-matrix/?site=&page=``: the subject x visit matrix;
* ``/admin/trials/trial/<id>/audit-trail/?filters`` (``data_management.audit_trail``) and
  ``audit-trail/export/`` with the same filters as CSV;

Each view takes the trial's ModelAdmin and reads what the API reads, scoped the same way.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.template.response import TemplateResponse

from edc.core import roles
from edc.core.admin import user_names
from subjects.models import Site, Subject

from . import audit_trail, matrix
from .csv_stream import csv_response


def scoped_trial(model_admin, request, pk):
    """The trial ``pk`` among the user's (404 otherwise), if the user may view it."""
    trial = roles.scope(model_admin.model.objects.filter(pk=pk), request.user,
                        trial="pk", site=None).first()
    if trial is None:
        raise Http404("No such trial among yours.")
    if not model_admin.has_view_permission(request, trial):
        raise PermissionDenied
    return trial


def render(model_admin, request, template: str, context: dict):
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, template, {
        **model_admin.admin_site.each_context(request), "opts": model_admin.opts, **context})


def _page(request) -> int:
    value = request.GET.get("page") or "1"
    return int(value) if value.isdigit() and len(value) < 10 else 0


def status_matrix_view(model_admin, request, pk):
    trial = scoped_trial(model_admin, request, pk)
    sites = roles.scope(Site.objects.filter(trial=trial), request.user, site="pk")
    error, data, site = None, None, None
    try:
        site = matrix.site_of(trial, request.user, request.GET.get("site"))
        data = matrix.status_matrix(trial, request.user, site=site, page=_page(request))
    except ValidationError as exc:
        error = _error_text(exc)
    if data is not None:
        for row in data["subjects"]:
            row["cells"] = [row["visits"].get(code) for code in data["columns"]]
    return render(model_admin, request, "admin/data_management/status_matrix.html", {
        "title": f"Status matrix: {trial.registry_id}", "subtitle": trial.title,
        "trial": trial, "matrix": data, "error": error, "sites": sites.order_by("code"),
        "site": site})


def _error_text(exc: ValidationError) -> str:
    return "; ".join(f"{k.replace('_', ' ')}: {' '.join(v)}" for k, v in exc.message_dict.items())


def audit_trail_view(model_admin, request, pk):
    trial = scoped_trial(model_admin, request, pk)
    error, data = None, None
    try:
        filters = audit_trail.parse_filters(request.GET, request.user, trial)
        data = audit_trail.page(trial, request.user, filters, _page(request))
    except ValidationError as exc:
        error = _error_text(exc)
    if data is not None:
        names = user_names({row["user"] for row in data["results"]})
        for row in data["results"]:
            row["who"] = names.get(row["user"]) or row["username"] or "system"
            row["change_list"] = [(k, old, new) for k, (old, new) in row["changes"].items()]
    query = request.GET.copy()
    query.pop("page", None)
    return render(model_admin, request, "admin/data_management/audit_trail.html", {
        "title": f"Audit trail: {trial.registry_id}", "subtitle": trial.title,
        "trial": trial, "data": data, "error": error, "values": request.GET,
        "query": query.urlencode(),
        "subjects": roles.scope(Subject.objects.filter(trial=trial, retired_at__isnull=True),
                                request.user).order_by("subject_number", "screening_number"),
        "sites": roles.scope(Site.objects.filter(trial=trial), request.user,
                             site="pk").order_by("code"),
        "record_types": [(s.label, s.name) for s in audit_trail.visible_sources(
            request.user, trial)]})


def audit_trail_export_view(model_admin, request, pk):
    trial = scoped_trial(model_admin, request, pk)
    try:
        filters = audit_trail.parse_filters(request.GET, request.user, trial)
    except ValidationError as exc:
        return HttpResponseBadRequest(_error_text(exc), content_type="text/plain")
    return csv_response(audit_trail.csv_lines(trial, request.user, filters),
                        f"audit-trail-{trial.registry_id}.csv")
