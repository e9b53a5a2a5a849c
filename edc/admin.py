"""Admin plumbing for clinical models: site scoping, reason for change, history, no delete."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils.html import format_html_join

from . import roles
from .audit import change_reason, history
from .models import PendingTask


class ReasonForChangeForm(forms.ModelForm):
    """Adds a required "reason for change" when an existing record is edited."""

    reason_for_change = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when changing a saved record (audit trail).",
    )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.has_changed() and not (
            cleaned.get("reason_for_change") or ""
        ).strip():
            self.add_error("reason_for_change", "A reason for change is required.")
        return cleaned


class ClinicalAdmin(admin.ModelAdmin):
    """ModelAdmin for audited clinical models.

    * lists only the records of the user's trials and sites (``scope_trial``/``scope_site``);
    * asks for a reason for change on every edit of a saved record;
    * never deletes; shows the record's audit trail read-only;
    * permissions follow the trialdesk roles (edc.roles), not per-model Django permissions.
    """

    form = ReasonForChangeForm
    scope_trial = "trial"
    scope_site: str | None = "site"
    history_hidden_fields: tuple[str, ...] = ()

    def get_queryset(self, request):
        return roles.scope(
            super().get_queryset(request), request.user,
            trial=self.scope_trial, site=self.scope_site,
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("audit_trail")
        return fields

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "audit_trail"]
        if obj is None and "reason_for_change" in fields:
            fields.remove("reason_for_change")
        if obj is not None:
            fields.append("audit_trail")
        return fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return roles.can_enter_data(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_enter_data(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and bool(roles.roles_of(user))

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def save_model(self, request, obj, form, change):
        if change:
            with transaction.atomic(), change_reason(
                form.cleaned_data.get("reason_for_change", ""), request.user
            ):
                super().save_model(request, obj, form, change)
        else:
            super().save_model(request, obj, form, change)

    @admin.display(description="Audit trail")
    def audit_trail(self, obj):
        rows = history(obj)
        hidden = set(self.history_hidden_fields)
        return format_html_join(
            "",
            "<div><strong>{}</strong> · {} · user {} · reason: {}<br><code>{}</code></div>",
            (
                (
                    row["at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
                    row["event"],
                    row["username"] or row["user"] or "system",
                    row["reason"] or "(initial entry)",
                    "; ".join(
                        f"{k}: {v[0]!r} → {v[1]!r}" for k, v in row["changes"].items()
                        if k not in hidden and k not in {"updated_at", "created_at"}
                    ),
                )
                for row in rows
            ),
        )


@admin.register(PendingTask)
class PendingTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "task_name", "args", "state", "attempts", "created_at", "finished_at"]
    list_filter = ["state", "task_name"]
    readonly_fields = [f.name for f in PendingTask._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.has_role(request.user, roles.ADMIN, roles.DATA_MANAGER)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)
