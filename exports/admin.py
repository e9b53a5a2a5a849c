"""Admin: the export records (who pulled what, when, scope, rows, SHA-256), read-only."""

from django.contrib import admin

from edc import roles
from edc.admin import AllocationGuard

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


@admin.register(ExportDownload)
class ExportDownloadAdmin(ReadOnlyForAdmins):
    list_display = ["id", "at", "user", "export"]
    list_select_related = ["user", "export", "export__requested_by"]
