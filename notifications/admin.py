"""Admin: sponsor safety contacts per trial (editable by admins and data managers) and the
notifications sent (read-only, scoped like every clinical record)."""

from django.contrib import admin

from edc.core import roles
from edc.core.admin import ClinicalAdmin, ScopedRelatedFilter

from .models import Notification, SafetyContact

#: Roles that set up who is told of a trial's safety events.
CONTACT_EDITORS = (roles.ADMIN, roles.DATA_MANAGER)


@admin.register(SafetyContact)
class SafetyContactAdmin(ClinicalAdmin):
    list_display = ["trial", "email", "label", "retired_at"]
    list_filter = [("trial", ScopedRelatedFilter)]
    search_fields = ["email", "label", "trial__registry_id"]
    list_select_related = ["trial"]
    fields = ["trial", "email", "label", "reason_for_change"]
    scope_site = None
    actions = ["retire_contacts"]

    @admin.action(description="Stop alerting the selected contacts (retire)",
                  permissions=["change"])
    def retire_contacts(self, request, queryset):
        rows = list(queryset.filter(retired_at__isnull=True))
        for contact in rows:
            contact.retire("no longer a safety contact of the trial", request.user)
        self.message_user(request, f"{len(rows)} safety contact(s) retired.")

    def has_add_permission(self, request) -> bool:
        return roles.has_role(request.user, *CONTACT_EDITORS)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.has_role(request.user, *CONTACT_EDITORS)


@admin.register(Notification)
class NotificationAdmin(ClinicalAdmin):
    """Every safety alert and its delivery; nobody adds, changes or deletes one here."""

    list_display = ["created_at", "kind", "trial", "site", "subject_study_id", "event_term",
                    "grade", "recipient_email", "state", "attempts", "sent_at"]
    list_filter = ["state", "kind", "recipient_kind", ("trial", ScopedRelatedFilter)]
    search_fields = ["subject_study_id", "event_term", "recipient_email", "event_key"]
    list_select_related = ["trial", "site"]
    date_hierarchy = "created_at"
    fields = ["kind", "event_key", "trial", "site", "subject_study_id", "event_term", "grade",
              "event_date", "link", "recipient_kind", "recipient_email", "message_subject",
              "body", "state", "attempts", "last_error", "next_attempt_at", "created_at",
              "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
