"""Admin for protocols (read-only: they change through their files).

Each trial links to its dashboard (``edc.dashboard``, wired into the admin site by
``edc.dashboard.site`` at ``/admin/trials/trial/<id>/dashboard/``).
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from edc.core import roles
from edc.core.admin import ClinicalAdmin, ScopedRelatedFilter, blinded_q

from .models import Arm, DoseLevel, ProtocolVersion, Trial


class ProtocolAdmin(ClinicalAdmin):
    """Protocols are read-only in the admin: they change through their files (an amendment).

    A protocol version and its arms and dose levels map each arm to its products (the file
    itself is in the audit trail): users blinded to a trial do not see them (ICH E9 2.3.1).
    """

    scope_site = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.scope_trial == "pk":
            return queryset
        return queryset.exclude(blinded_q(request.user, self.scope_trial))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Trial)
class TrialAdmin(ProtocolAdmin):
    list_display = ["registry_id", "title", "phase", "status", "masking", "target_enrollment",
                    "dashboard_link"]
    list_filter = ["phase", "status", "masking"]
    search_fields = ["registry_id", "title", "sponsor"]
    date_hierarchy = "start_date"
    scope_trial = "pk"
    change_form_template = "admin/trials/trial/change_form.html"

    @admin.display(description="dashboard")
    def dashboard_link(self, obj):
        return format_html('<a href="{}">dashboard</a>',
                           reverse("admin:trials_trial_dashboard", args=[obj.pk]))


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(ProtocolAdmin):
    list_display = ["trial", "version", "source_file", "digest", "created_at"]
    list_filter = [("trial", ScopedRelatedFilter)]
    search_fields = ["trial__registry_id", "source_file", "digest"]
    list_select_related = ["trial"]
    exclude = ["document", "file_text", "source_text"]  # long; the file is in the repository


class ArmVisibility:
    """Arms reveal the design: data managers and admins, unblinded to the trial (the
    queryset, ``ProtocolAdmin``), see them."""

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user) or roles.has_role(request.user, roles.DATA_MANAGER)


@admin.register(Arm)
class ArmAdmin(ArmVisibility, ProtocolAdmin):
    list_display = ["code", "label", "arm_type", "protocol_version"]
    list_filter = [("protocol_version__trial", ScopedRelatedFilter), "arm_type"]
    search_fields = ["code", "label"]
    list_select_related = ["protocol_version__trial"]
    scope_trial = "protocol_version__trial"
    exclude = ["blinded_label"]


@admin.register(DoseLevel)
class DoseLevelAdmin(ProtocolAdmin):
    list_display = ["code", "order", "value", "unit", "basis", "protocol_version"]
    list_filter = [("protocol_version__trial", ScopedRelatedFilter), "basis"]
    search_fields = ["code", "label"]
    list_select_related = ["protocol_version__trial"]
    scope_trial = "protocol_version__trial"
