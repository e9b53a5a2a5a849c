"""The casebook PDF in the admin, wired into the admin site by ``edc.dashboard.site``:

* ``/admin/subjects/subject/<id>/casebook/`` and ``/admin/subjects/site/<id>/casebook/``: the
  casebooks you requested for that subject or site (state, size, SHA-256, a download link)
  and a button that queues a new one (POST; ``exports.services.request_casebook``);
* ``/admin/exports/exportrecord/<id>/download/``: the file of a finished background export,
  on the same terms as the API (``exports.services.may_download``), each download recorded.

Scoped like the API: a subject or site outside the user's memberships is a 404; roles that
may not export get a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from edc.core import roles

from . import services
from .models import Dataset, ExportDownload, ExportRecord

#: Seconds between reloads of the page while a casebook is being made.
REFRESH_SECONDS = 2


def _target(model_admin, request, pk):
    if not services.can_export(request.user):
        raise PermissionDenied
    model = model_admin.model
    lookups = {} if model._meta.model_name == "subject" else {"site": "pk"}
    target = roles.scope(model.objects.filter(pk=pk), request.user, **lookups).first()
    if target is None:
        raise Http404("No such record among yours.")
    return target


def casebook_view(model_admin, request, pk):
    """The casebooks of one subject or site (``model_admin`` is the Subject or Site admin)."""
    target = _target(model_admin, request, pk)
    is_subject = model_admin.model._meta.model_name == "subject"
    which = {"subject_id" if is_subject else "site_id": target.pk}
    if request.method == "POST":
        try:
            record = services.request_casebook(request.user, **which)
        except services.OutOfScope:
            raise Http404("No such record among yours.") from None
        messages.success(request, f"Casebook PDF requested (export {record.pk}); it is being "
                                  "generated.")
        return redirect(request.path)
    records = ExportRecord.objects.filter(dataset=Dataset.CASEBOOK,
                                          requested_by=request.user, **which)
    if not is_subject:
        records = records.filter(subject__isnull=True)
    records = list(records.order_by("-created_at", "-pk")[:20])
    pending = any(r.state in (ExportRecord.State.QUEUED, ExportRecord.State.RUNNING)
                  for r in records)
    request.current_app = model_admin.admin_site.name
    label = f"subject {target.subject_number or target.screening_number}" if is_subject \
        else f"site {target.code}"
    return TemplateResponse(request, "admin/exports/casebook.html", {
        **model_admin.admin_site.each_context(request), "opts": model_admin.opts,
        "title": f"Casebook PDF: {label}", "target": target, "records": records,
        "refresh": REFRESH_SECONDS if pending else None})


def download_view(request, pk):
    """The file of a finished background export (requester or admin, scope re-checked)."""
    record = ExportRecord.objects.select_related("trial", "site", "subject").filter(
        pk=pk).first()
    if record is None or not services.may_download(request.user, record):
        raise Http404("No such export among yours.")
    if record.state != ExportRecord.State.DONE or record.mode != ExportRecord.Mode.BACKGROUND:
        raise Http404("This export has no file yet.")
    path = services.file_path(record)
    if not path.is_file():
        raise Http404("The export file is no longer available.")
    ExportDownload.objects.create(export=record, user=request.user)
    return FileResponse(path.open("rb"), as_attachment=True,
                        filename=services.download_name(record))
