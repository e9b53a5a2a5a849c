"""Admin: the export records (who pulled what, when, scope, rows, SHA-256), read-only."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from edc.core import roles
from edc.core.admin import AllocationGuard
from trials.models import Trial

from . import catalogue, services
from .models import ExportDownload, ExportRecord


class ReadOnlyForAdmins(AllocationGuard, admin.ModelAdmin):
    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and roles.is_admin(request.user)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExportRecord)
class ExportRecordAdmin(ReadOnlyForAdmins):
    list_display = ["id", "created_at", "requested_by", "dataset", "format", "mode", "state",
                    "trial", "row_count", "unblinded", "sha256"]
    list_filter = ["dataset", "format", "mode", "state", "unblinded"]
    search_fields = ["requested_by__username", "sha256", "uid"]
    list_select_related = ["requested_by", "trial"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("catalogue/", view(self.catalogue_view),
                     name="exports_exportrecord_catalogue"), *super().get_urls()]

    def catalogue_view(self, request):
        """Every dataset x format of each trial the user may export (``exports.catalogue``),
        scoped by memberships and blinded as the exports are."""
        if not services.can_export(request.user):
            raise PermissionDenied
        trials = roles.scope(Trial.objects.order_by("registry_id"), request.user,
                             trial="pk", site=None)
        entries = []
        for trial in trials:
            _, site_ids, _ = services.scope_for(request.user, trial.pk)
            entries.append(catalogue.catalogue(request.user, trial, site_ids))
        return TemplateResponse(request, "admin/exports/catalogue.html", {
            **self.admin_site.each_context(request), "title": "Export catalogue",
            "entries": entries})


@admin.register(ExportDownload)
class ExportDownloadAdmin(ReadOnlyForAdmins):
    list_display = ["id", "at", "user", "export"]
    list_select_related = ["user", "export", "export__requested_by"]
