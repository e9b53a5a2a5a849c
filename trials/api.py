"""REST API for trials and protocol versions (read-only: protocols change through files)."""

from rest_framework import serializers, viewsets

from edc.api.mixins import ScopedQuerysetMixin

from .models import ProtocolVersion, Trial


class TrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trial
        fields = [
            "id", "registry_id", "registry", "title", "phase", "status", "sponsor",
            "target_enrollment", "start_date", "completion_date", "masking",
        ]


class ProtocolVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProtocolVersion
        fields = ["id", "trial", "version", "digest", "source_file", "created_at"]


class TrialViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Trial.objects.all()
    serializer_class = TrialSerializer
    scope_trial = "pk"
    scope_site = None
    ordering_fields = ["id", "registry_id"]


class ProtocolVersionViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ProtocolVersion.objects.select_related("trial")
    serializer_class = ProtocolVersionSerializer
    scope_site = None
    filterset_fields = ["trial"]
    ordering_fields = ["id", "version"]


def register(router) -> None:
    router.register("trials", TrialViewSet)
    router.register("protocol-versions", ProtocolVersionViewSet)
