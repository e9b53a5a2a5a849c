"""REST API: ``/api/v1/notifications/`` lists and shows the safety alerts sent (read-only),
scoped by memberships like every clinical record (a trial-wide alert, e.g. a safety stop, to
members of all the trial's sites). Filters: kind, state, trial, site, subject, adverse_event.

Blinded users: the texts of a blinded trial's alerts are written blinded for everyone
(``notifications.services``), and the arm is not given by id.
"""

from __future__ import annotations

from rest_framework import serializers, viewsets

from edc.core.api.mixins import ScopedQuerysetMixin

from .models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    queued_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "event_key", "trial", "site", "subject", "adverse_event",
                  "subject_study_id", "event_term", "grade", "event_date", "link",
                  "recipient_kind", "recipient_email", "message_subject", "body", "state",
                  "attempts", "last_error", "next_attempt_at", "queued_at", "sent_at"]
        read_only_fields = fields


class NotificationViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Safety alerts (new SAE, overdue SAE, DLT/TI flag, death, safety stop) and delivery."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    filterset_fields = ["kind", "state", "trial", "site", "subject", "adverse_event"]
    ordering_fields = ["id", "created_at"]


def register(router) -> None:
    router.register("notifications", NotificationViewSet)
