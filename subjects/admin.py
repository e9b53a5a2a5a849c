from django.contrib import admin

from edc import roles
from edc.admin import ClinicalAdmin

from .models import Membership, Site, Subject


@admin.register(Site)
class SiteAdmin(ClinicalAdmin):
    list_display = ["code", "name", "city", "country", "trial"]
    list_filter = ["trial"]
    search_fields = ["code", "name", "city"]
    list_select_related = ["trial"]
    scope_site = "pk"


@admin.register(Membership)
class MembershipAdmin(ClinicalAdmin):
    list_display = ["user", "trial", "site", "unblinded"]
    list_filter = ["trial", "unblinded"]
    list_select_related = ["user", "trial", "site"]

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return roles.is_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user)


@admin.register(Subject)
class SubjectAdmin(ClinicalAdmin):
    list_display = ["screening_number", "subject_number", "site", "trial", "status", "consent_date"]
    list_filter = ["trial", "site", "status"]
    search_fields = ["screening_number", "subject_number"]
    list_select_related = ["trial", "site"]
    date_hierarchy = "consent_date"
    history_hidden_fields = ("arm_id",)
    exclude = ["arm"]
    readonly_fields = [
        "protocol_version", "subject_number", "status", "status_date", "status_reason",
        "dose_level", "day0", "enrolled_on",
    ]
