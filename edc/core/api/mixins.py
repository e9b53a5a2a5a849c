"""ViewSet behaviour shared by the clinical endpoints: scoping, reasons, no hard delete."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.response import Response

from edc.core import hooks, roles
from edc.core.audit import change_reason, history

from .concurrency import VersionedMixin, check_if_match

REASON_HEADER = "HTTP_X_CHANGE_REASON"


def request_reason(request) -> str | None:
    """The reason for change: ``reason`` in the body, or the ``X-Change-Reason`` header."""
    reason = None
    if hasattr(request, "data") and isinstance(request.data, dict):
        reason = request.data.get("reason")
    reason = reason or request.META.get(REASON_HEADER)
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


class DataEntryPermission(permissions.BasePermission):
    """Reads for every scoped user; writes only for data-entry roles (and admins)."""

    message = "Your role may read these records but not change them."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return roles.can_enter_data(request.user)


class ScopedQuerysetMixin:
    """Limit the queryset to the user's trials and sites (404 for everything else)."""

    scope_trial = "trial"
    scope_site: str | None = "site"

    def get_queryset(self):
        return roles.scope(
            super().get_queryset(), self.request.user, trial=self.scope_trial, site=self.scope_site
        )


class HistoryEntrySerializer(serializers.Serializer):
    """One audit row of ``/history/`` (``edc.core.audit.history``): the endpoint answers a list."""

    at = serializers.DateTimeField()
    event = serializers.CharField()
    user = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True),
                                    min_length=2, max_length=2),
        help_text="field -> [old, new] (old is null on insert)")


HISTORY_SCHEMA = {
    "responses": {200: HistoryEntrySerializer(many=True)},
    "parameters": [OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    "description": "Audit trail of this record, oldest first: who, when (UTC), reason, old "
                   "and new values.",
}


class AuditedWriteMixin(VersionedMixin):
    """Updates need a reason (400 naming ``reason`` otherwise) and honour ``If-Match``
    (412 on a stale version, ``edc.core.api.concurrency``); deletes are refused (405)."""

    def perform_update(self, serializer):
        reason = request_reason(self.request)
        if reason is None:
            raise ValidationError(
                {"reason": ["A reason for change is required to change a saved record."]},
                code="reason_required",
            )
        with transaction.atomic(), change_reason(reason, self.request.user):
            check_if_match(self.request, serializer.instance, lock=True)
            serializer.save()

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()

    def destroy(self, request, *args, **kwargs):
        raise MethodNotAllowed(
            request.method,
            detail="Clinical records are never deleted; retire the record with a reason.",
        )

    @extend_schema(**HISTORY_SCHEMA)
    @action(detail=True, methods=["get"], url_path="history", pagination_class=None)
    def history(self, request, *args, **kwargs):
        obj = self.get_object()
        rows = history(obj)
        hidden = self.history_hidden_fields(obj)
        for row in rows:
            for name in hidden:
                row["changes"].pop(name, None)
        return Response(rows, status=status.HTTP_200_OK)

    def history_hidden_fields(self, obj) -> set[str]:
        """Fields whose values the requesting user may not see in the audit trail: what the
        blinding policy hides (``settings.EDC_BLINDING_POLICY``, as in the admin)."""
        trial = obj
        for part in getattr(self, "scope_trial", "trial").split("__"):
            trial = getattr(trial, part)
        return hooks.blinding_policy().hidden_audit_fields(self.request.user, type(obj), trial)
