from django.contrib import admin

from edc import roles
from edc.admin import ClinicalAdmin

from .models import Arm, DoseLevel, ProtocolVersion, Trial


class ProtocolAdmin(ClinicalAdmin):
    """Protocols are read-only in the admin: they change through their files (an amendment)."""

    scope_site = None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Trial)
class TrialAdmin(ProtocolAdmin):
    list_display = ["registry_id", "title", "phase", "status", "masking", "target_enrollment"]
    list_filter = ["phase", "status", "masking"]
    search_fields = ["registry_id", "title", "sponsor"]
    scope_trial = "pk"


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(ProtocolAdmin):
    list_display = ["trial", "version", "source_file", "digest", "created_at"]
    list_filter = ["trial"]
    list_select_related = ["trial"]


class ArmVisibility:
    """Arms reveal the design; blinded users see them only through neutral labels."""

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user) or roles.has_role(request.user, roles.DATA_MANAGER)


@admin.register(Arm)
class ArmAdmin(ArmVisibility, ProtocolAdmin):
    list_display = ["code", "label", "arm_type", "blinded_label", "protocol_version"]
    list_select_related = ["protocol_version__trial"]
    scope_trial = "protocol_version__trial"


@admin.register(DoseLevel)
class DoseLevelAdmin(ProtocolAdmin):
    list_display = ["code", "order", "value", "unit", "protocol_version"]
    list_select_related = ["protocol_version__trial"]
    scope_trial = "protocol_version__trial"
