"""REST API for trials and protocol versions (read-only: protocols change through files),
and the dose-finding recommendation with its confirmation by an investigator."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.mixins import ScopedQuerysetMixin

from . import protocol_read
from .models import ProtocolVersion, Trial


class TrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trial
        fields = [
            "id", "registry_id", "registry", "title", "phase", "status", "sponsor",
            "target_enrollment", "start_date", "completion_date", "masking", "allocation",
            "design_model", "ctcae_version",
        ]


class ProtocolVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProtocolVersion
        fields = ["id", "trial", "version", "digest", "source_file", "created_at",
                  "min_age_years", "max_age_years", "sex"]


class TrialViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Trial.objects.all()
    serializer_class = TrialSerializer
    scope_trial = "pk"
    scope_site = None
    ordering_fields = ["id", "registry_id"]


class ProtocolVersionViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ProtocolVersion.objects.select_related("trial")
    serializer_class = ProtocolVersionSerializer
    filterset_fields = ["trial"]
    ordering_fields = ["id", "version"]
    scope_site = None

    def _part(self, part: str) -> Response:
        version = self.get_object()
        return Response(protocol_read.protocol_part(
            version, part, roles.blinded_to(self.request.user, version.trial_id)))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def arms(self, request, pk=None):
        """The arms (ids, codes, labels, quotes); a blinded user sees ids and neutral labels."""
        return self._part("arms")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="dose-levels")
    def dose_levels(self, request, pk=None):
        """Dose levels (ids, values, units) and frequency levels of the dose-finding design."""
        return self._part("dose-levels")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def interventions(self, request, pk=None):
        """Interventions and regimens (arm x product, withheld from blinded users)."""
        return self._part("interventions")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="eligibility-criteria")
    def eligibility_criteria(self, request, pk=None):
        """Inclusion and exclusion criteria with the ids the eligibility answers take."""
        return self._part("eligibility-criteria")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="visit-plan")
    def visit_plan(self, request, pk=None):
        """The visit plan: visits, windows, follow-up, with their quotes."""
        return self._part("visit-plan")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def instruments(self, request, pk=None):
        """Questionnaires and other instruments with the assessments that schedule them."""
        return self._part("instruments")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def rules(self, request, pk=None):
        """Toxicity (DLT/TI) rules, dose finding, safety, endpoints: with source quotes."""
        return self._part("rules")


def register(router) -> None:
    router.register("trials", TrialViewSet)
    router.register("protocol-versions", ProtocolVersionViewSet)
