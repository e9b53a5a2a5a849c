"""The dose-finding endpoints of a trial (``/api/v1/trials/<id>/dose-recommendation/``,
``confirm-dose/``, ``review-safety-stop/``): here, beside the adverse events they read, and
registered under the trials prefix."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.mixins import ScopedQuerysetMixin
from trials.models import Trial

from .dose_escalation import confirm, recommendation, review_safety_stop


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


class TrialDoseFindingViewSet(ScopedQuerysetMixin, viewsets.GenericViewSet):
    queryset = Trial.objects.all()
    scope_trial = "pk"
    scope_site = None

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="dose-recommendation")
    def dose_recommendation(self, request, pk=None):
        """The protocol rule's recommendation for the next cohort, with the data it used."""
        return Response(recommendation(self.get_object()))

    @extend_schema(request=ConfirmDoseSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="confirm-dose",
            permission_classes=[InvestigatorOnly])
    def confirm_dose(self, request, pk=None):
        """An investigator confirms the next cohort's dose (a different dose needs a reason)."""
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
        data = SafetyReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = review_safety_stop(self.get_object(), arm_code=data.validated_data["arm"],
                                    decision=data.validated_data["decision"], user=request.user)
        return Response({"id": record.pk, "arm": record.arm.code,
                         "adverse_events": record.adverse_events,
                         "decision": record.decision}, status=201)


def register(router) -> None:
    router.register("trials", TrialDoseFindingViewSet, basename="trial-dose-finding")
