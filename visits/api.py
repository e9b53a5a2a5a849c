"""REST API for visits and their forms."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from edc.api.mixins import AuditedWriteMixin, DataEntryPermission, ScopedQuerysetMixin
from subjects.models import Subject

from . import qlq_c30, services
from .models import QlqC30Deterioration, QlqC30Form, QlqC30Score, Visit

SUBJECT_SCOPE = {"scope_trial": "subject__trial", "scope_site": "subject__site"}


class ScopedSubjectField(serializers.PrimaryKeyRelatedField):
    """A subject reference limited to the requesting user's trials and sites."""

    def get_queryset(self):
        from edc import roles

        return roles.scope(Subject.objects.all(), self.context["request"].user)


class VisitSerializer(serializers.ModelSerializer):
    out_of_window = serializers.BooleanField(read_only=True)

    class Meta:
        model = Visit
        fields = [
            "id", "subject", "code", "kind", "cycle", "intervention", "target_date",
            "window_low", "window_high", "actual_date", "status", "status_reason",
            "qlq_c30_due", "overdue", "out_of_window",
        ]
        read_only_fields = fields


class VisitViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Visit.objects.select_related("subject")
    serializer_class = VisitSerializer
    filterset_fields = ["subject", "status", "kind", "overdue", "subject__site"]
    ordering_fields = ["id", "target_date"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]


class QlqC30ScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = QlqC30Score
        fields = ["state", "error", "computed_at", *qlq_c30.SCALES]
        read_only_fields = fields


class QlqC30FormSerializer(serializers.ModelSerializer):
    subject = ScopedSubjectField()
    score = QlqC30ScoreSerializer(read_only=True)
    reason = serializers.CharField(
        write_only=True, required=False, help_text="Reason for change (required on update)"
    )

    class Meta:
        model = QlqC30Form
        fields = ["id", "subject", "visit", "completion_date", "mode",
                  *qlq_c30.ITEM_KEYS, "score", "reason"]

    def validate(self, attrs):
        attrs.pop("reason", None)
        subject = attrs.get("subject") or getattr(self.instance, "subject", None)
        visit = attrs.get("visit") or getattr(self.instance, "visit", None)
        if visit is not None and subject is not None and visit.subject_id != subject.pk:
            raise serializers.ValidationError({"visit": "This visit belongs to another subject."})
        responses = {key: attrs.get(key, getattr(self.instance, key, None))
                     for key in qlq_c30.ITEM_KEYS}
        try:
            qlq_c30.score(responses)
        except ValueError as exc:
            item = str(exc).split(":", 1)[0]
            raise serializers.ValidationError({item: str(exc)}) from exc
        return attrs


class QlqC30FormViewSet(ScopedQuerysetMixin, AuditedWriteMixin, viewsets.ModelViewSet):
    """QLQ-C30 forms; saving one queues its scoring and the subject's deterioration."""

    queryset = QlqC30Form.objects.select_related("subject", "visit", "score")
    serializer_class = QlqC30FormSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "visit", "subject__site"]
    ordering_fields = ["id", "completion_date"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    def perform_create(self, serializer):
        super().perform_create(serializer)
        services.queue_qlq_scoring(serializer.instance)

    def perform_update(self, serializer):
        super().perform_update(serializer)
        services.queue_qlq_scoring(serializer.instance)


class QlqC30DeteriorationSerializer(serializers.ModelSerializer):
    class Meta:
        model = QlqC30Deterioration
        fields = ["id", "subject", "scale", "event", "event_date", "confirm_date",
                  "censor_date", "days", "computed_at"]
        read_only_fields = fields


class QlqC30DeteriorationViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = QlqC30Deterioration.objects.select_related("subject")
    serializer_class = QlqC30DeteriorationSerializer
    filterset_fields = ["subject", "scale", "event"]
    ordering_fields = ["id", "scale"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]


def register(router) -> None:
    router.register("visits", VisitViewSet)
    router.register("qlq-c30-forms", QlqC30FormViewSet)
    router.register("qlq-c30-deterioration", QlqC30DeteriorationViewSet)
