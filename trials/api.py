"""REST API for trials and protocol versions (read-only: protocols change through files),
and the dose-finding recommendation with its confirmation by an investigator."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
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


class ConfirmDoseSerializer(serializers.Serializer):
    arm = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["next_cohort", "result"], default="next_cohort",
        help_text="next_cohort: the dose of the next cohort; result: the dose the rule found "
                  "(tolerable dose, RP2D) for arms that depend on it")
    cohort = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                      help_text="Required for next_cohort")
    dose_level = serializers.CharField()
    frequency_level = serializers.CharField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs["kind"] == "next_cohort" and attrs.get("cohort") is None:
            raise serializers.ValidationError({"cohort": "required to confirm a next cohort"})
        return attrs


class SafetyReviewSerializer(serializers.Serializer):
    arm = serializers.CharField()
    decision = serializers.CharField(help_text="What the investigator decided, and why")


class InvestigatorOnly(permissions.BasePermission):
    message = "Only an investigator may confirm a dose."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.INVESTIGATOR, roles.ADMIN)


class TrialViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Trial.objects.all()
    serializer_class = TrialSerializer
    scope_trial = "pk"
    scope_site = None
    ordering_fields = ["id", "registry_id"]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="dose-recommendation")
    def dose_recommendation(self, request, pk=None):
        """The protocol rule's recommendation for the next cohort, with the data it used."""
        from subjects.dose_escalation import recommendation

        return Response(recommendation(self.get_object()))

    @extend_schema(request=ConfirmDoseSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="confirm-dose",
            permission_classes=[InvestigatorOnly])
    def confirm_dose(self, request, pk=None):
        """An investigator confirms the next cohort's dose (a different dose needs a reason)."""
        from subjects.dose_escalation import confirm

        data = ConfirmDoseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        record = confirm(self.get_object(), arm_code=v["arm"], cohort=v["cohort"],
                         dose_level_code=v["dose_level"], frequency_level=v["frequency_level"],
                         reason=v["reason"], kind=v["kind"], user=request.user)
        return Response({"id": record.pk, "kind": record.kind, "cohort": record.cohort,
                         "dose_level": record.dose_level.code,
                         "frequency_level": record.frequency_level,
                         "outside_rule": record.outside_rule, "reason": record.reason,
                         "recommendation": record.recommendation}, status=201)

    @extend_schema(request=SafetyReviewSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="review-safety-stop",
            permission_classes=[InvestigatorOnly])
    def review_safety_stop(self, request, pk=None):
        """An investigator records a decision on a dose-finding safety stop (related deaths)."""
        from subjects.dose_escalation import review_safety_stop

        data = SafetyReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = review_safety_stop(self.get_object(), arm_code=data.validated_data["arm"],
                                    decision=data.validated_data["decision"], user=request.user)
        return Response({"id": record.pk, "arm": record.arm.code,
                         "adverse_events": record.adverse_events,
                         "decision": record.decision}, status=201)


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
