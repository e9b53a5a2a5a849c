"""REST API for visits and their forms."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django.utils.translation import gettext as _
from django_filters import rest_framework as django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core.api.errors import django_validation_detail
from edc.core.api.mixins import AuditedWriteMixin, DataEntryPermission, ScopedQuerysetMixin
from edc.core.api.representation import PlainFieldsMixin, own_and
from edc.core.api.valuelists import ValuesListMixin
from edc.core.exceptions import ConflictValidationError
from subjects.models import Subject
from trials import masking
from trials.api_fields import ProductCodeField
from trials.models import Intervention

from . import qlq_c30, services
from .models import (
    Exposure,
    QlqC30Deterioration,
    QlqC30Form,
    QlqC30Score,
    TumourAssessment,
    Visit,
    overdue_q,
)

SUBJECT_SCOPE = {"scope_trial": "subject__trial", "scope_site": "subject__site"}


class ScopedSubjectField(serializers.PrimaryKeyRelatedField):
    """A subject reference limited to the requesting user's trials and sites."""

    def get_queryset(self):
        from edc.core import roles

        return roles.scope(Subject.objects.all(), self.context["request"].user)


class VisitSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    out_of_window = serializers.BooleanField(read_only=True)
    overdue = serializers.BooleanField(
        source="is_overdue", read_only=True,
        help_text="Planned and past the end of its window (Visit.objects.overdue()), "
                  "computed when read")
    intervention = ProductCodeField("intervention", "subject")

    class Meta:
        model = Visit
        fields = [
            "id", "subject", "code", "kind", "cycle", "intervention", "target_date",
            "window_low", "window_high", "actual_date", "status", "status_reason",
            "qlq_c30_due", "overdue", "out_of_window",
        ]
        read_only_fields = fields


class RecordVisitSerializer(serializers.Serializer):
    actual_date = serializers.DateField()
    reason = serializers.CharField(required=False, help_text="Required to correct a date")


class MissedVisitSerializer(serializers.Serializer):
    reason = serializers.CharField()


class VisitFilter(django_filters.FilterSet):
    overdue = django_filters.BooleanFilter(method="filter_overdue",
                                           help_text="Visit.objects.overdue()")

    class Meta:
        model = Visit
        fields = {"subject": ["exact"], "status": ["exact"], "kind": ["exact"],
                  "subject__site": ["exact"], "subject__trial": ["exact"],
                  "target_date": ["gte", "lte"]}

    def filter_overdue(self, queryset, name, value):
        return queryset.overdue() if value else queryset.exclude(overdue_q())


class VisitViewSet(ScopedQuerysetMixin, ValuesListMixin, viewsets.ReadOnlyModelViewSet):
    """The visit calendar; visits are generated from the protocol, never created by hand."""

    queryset = Visit.objects.select_related("subject").only(
        *own_and(Visit, "subject__trial_id", "subject__protocol_version_id"))
    #: A list page reads the subject's two columns the blinded product code needs with each
    #: visit (``ValuesListMixin``: no model instances, issue 19).
    list_columns = ("intervention",)
    list_related = {"subject": ("trial_id", "protocol_version_id")}
    serializer_class = VisitSerializer
    permission_classes = [DataEntryPermission]
    filterset_class = VisitFilter
    ordering_fields = ["id", "target_date"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    def get_queryset(self):
        return super().get_queryset().with_overdue()

    def _respond(self, visit):
        return Response(self.get_serializer(self.get_queryset().get(pk=visit.pk)).data)

    @extend_schema(request=RecordVisitSerializer, responses={200: VisitSerializer})
    @action(detail=True, methods=["post"])
    def record(self, request, pk=None):
        """Mark the visit done on its actual date (outside the window = flagged deviation)."""
        visit = self.get_object()
        data = RecordVisitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if visit.status == Visit.Status.DONE and not data.validated_data.get("reason"):
            raise serializers.ValidationError(
                {"reason": "A reason for change is required to correct a visit date."})
        visit = services.record_visit(visit, data.validated_data["actual_date"], request.user,
                                      data.validated_data.get("reason", ""))
        return self._respond(visit)

    @extend_schema(request=MissedVisitSerializer, responses={200: VisitSerializer})
    @action(detail=True, methods=["post"])
    def missed(self, request, pk=None):
        """The visit did not take place (reason required)."""
        data = MissedVisitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        visit = services.mark_missed(self.get_object(), data.validated_data["reason"],
                                     request.user)
        return self._respond(visit)


class VisitScopedField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        from edc.core import roles

        return roles.scope(Visit.objects.select_related("subject"), self.context["request"].user,
                           trial="subject__trial", site="subject__site")


def _masked(user, subject, exc: DjangoValidationError) -> Exception:
    """A service's refusal as a 400, product names masked for blinded users (locked data
    stays a conflict: 409)."""
    if isinstance(exc, ConflictValidationError):
        return exc
    mask = masking.text_masker(user, subject)
    detail = django_validation_detail(exc)
    if isinstance(detail, dict):
        detail = {field: [mask(m) for m in problems] for field, problems in detail.items()}
    else:
        detail = [mask(m) for m in detail]
    return serializers.ValidationError(detail)


class ExposureSerializer(serializers.ModelSerializer):
    visit = VisitScopedField(required=False, allow_null=True, help_text=(
        "The treatment visit; empty for dosing periods of a daily product and for products "
        "the schedule has no visit for"))
    subject = ScopedSubjectField(required=False, help_text="Needed when no visit is named")
    intervention_code = serializers.CharField(
        write_only=True, required=False,
        help_text="The product given; default (and, for users blinded to the trial, always for "
                  "a product with a matching placebo) the visit's planned product")
    intervention = ProductCodeField("intervention.code", "subject")
    given_total = serializers.DecimalField(max_digits=30, decimal_places=6, required=False,
                                           allow_null=True, min_value=Decimal("0.000001"))
    dose_value = serializers.DecimalField(max_digits=24, decimal_places=6,
                                          min_value=Decimal("0.000001"))
    reason = serializers.CharField(write_only=True, required=False)

    class Meta:
        model = Exposure
        fields = ["id", "subject", "visit", "intervention", "intervention_code",
                  "administered_on", "end_date", "frequency", "start_time", "stop_time",
                  "dose_value", "dose_unit", "weight_kg", "height_cm", "bsa_m2",
                  "planned_dose", "planned_total", "given_total", "total_unit", "interrupted",
                  "interruption_reason", "retired_at", "retired_reason", "reason"]
        read_only_fields = ["bsa_m2", "planned_dose", "planned_total", "total_unit",
                            "retired_at", "retired_reason"]

    def create(self, validated_data):
        validated_data.pop("reason", None)
        visit = validated_data.pop("visit", None)
        subject = visit.subject if visit is not None else validated_data.pop("subject", None)
        validated_data.pop("subject", None)
        if subject is None:
            raise serializers.ValidationError({"subject": "Name the visit or the subject."})
        user = self.context["request"].user
        code = masking.given_product(user, subject, validated_data.pop("intervention_code", ""),
                                     planned=visit.intervention if visit else "")
        if not code:
            raise serializers.ValidationError(
                {"intervention_code": "This visit has no planned product: name the product."})
        intervention = Intervention.objects.filter(
            protocol_version=subject.protocol_version_id, code=code).first()
        if intervention is None:
            raise serializers.ValidationError(
                {"intervention_code": f"no intervention {code!r} in the subject's protocol"})
        try:
            return services.record_exposure(visit, subject=subject, intervention=intervention,
                                            user=user, **validated_data)
        except DjangoValidationError as exc:
            raise _masked(user, subject, exc) from None

    def validate(self, attrs):
        services.check_exposure_values(attrs)  # plausibility at the door, fields named
        return attrs

    def update(self, instance, validated_data):
        """A correction of entered values, with the reason (``services.correct_exposure``)."""
        from edc.core.api.mixins import request_reason

        validated_data.pop("reason", None)
        fixed = {"subject", "visit", "intervention_code", "dose_unit", "frequency"}
        refused = sorted(set(validated_data) & fixed)
        if refused:
            raise serializers.ValidationError(dict.fromkeys(refused, (
                "not correctable: retire this exposure (entered in error) and record it "
                "again")))
        request = self.context["request"]
        try:
            return services.correct_exposure(instance, validated_data, request_reason(request),
                                             request.user)
        except DjangoValidationError as exc:
            raise _masked(request.user, instance.subject, exc) from None


class RetireSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the record is retired (entered in error)")


class ExposureViewSet(ScopedQuerysetMixin, AuditedWriteMixin, viewsets.ModelViewSet):
    """Administrations and dosing periods; PATCH corrects entered values with a reason, and a
    record entered in error is retired (``retire``), never deleted."""

    queryset = Exposure.objects.select_related("subject", "intervention", "visit")
    serializer_class = ExposureSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "visit", "subject__site"]
    ordering_fields = ["id", "administered_on"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    @extend_schema(request=RetireSerializer, responses={200: ExposureSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """Retire an exposure entered in error, with the reason."""
        exposure = self.get_object()
        data = RetireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            exposure = services.retire_exposure(exposure, data.validated_data["reason"],
                                                request.user)
        except DjangoValidationError as exc:
            raise _masked(request.user, exposure.subject, exc) from None
        return Response(self.get_serializer(exposure).data)


class TumourAssessmentSerializer(serializers.ModelSerializer):
    visit = VisitScopedField()

    class Meta:
        model = TumourAssessment
        fields = ["id", "subject", "visit", "assessment_date", "method", "criteria",
                  "overall_response", "confirmed_progression"]
        read_only_fields = ["subject", "confirmed_progression"]

    def create(self, validated_data):
        visit = validated_data.pop("visit")
        return services.record_tumour_assessment(visit, user=self.context["request"].user,
                                                 **validated_data)


class TumourAssessmentViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    """Tumour responses; a recorded assessment is corrected through the admin with a reason."""

    http_method_names = ["get", "post", "head", "options"]
    queryset = TumourAssessment.objects.select_related("subject", "visit")
    serializer_class = TumourAssessmentSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "overall_response", "subject__site"]
    ordering_fields = ["id", "assessment_date"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class QlqC30ScoreSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = QlqC30Score
        fields = ["state", "error", "computed_at", *qlq_c30.SCALES]
        read_only_fields = fields


class QlqC30FormSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    subject = ScopedSubjectField()
    visit = VisitScopedField()
    score = QlqC30ScoreSerializer(read_only=True)
    unscheduled = serializers.SerializerMethodField(
        help_text="Completed at a visit where the protocol schedules no QLQ-C30: left out of "
                  "time to deterioration unless the protocol allows it")
    reason = serializers.CharField(
        write_only=True, required=False, help_text="Reason for change (required on update)"
    )

    class Meta:
        model = QlqC30Form
        fields = ["id", "subject", "visit", "completion_date", "mode",
                  *qlq_c30.ITEM_KEYS, "score", "unscheduled", "reason"]

    def get_unscheduled(self, obj) -> bool:
        due = getattr(obj, "visit_qlq_c30_due_read", None)  # a list page's column
        return not (obj.visit.qlq_c30_due if due is None else due)

    def validate(self, attrs):
        attrs.pop("reason", None)
        if self.instance is not None and self.instance.mode == QlqC30Form.Mode.EPRO:
            raise serializers.ValidationError(_(
                "The patient completed this form (ePRO): its answers are corrected only by a "
                "data clarification with the patient's confirmation and a reason "
                "(/api/v1/epro-clarifications/)."), code="patient_reported")
        if attrs.get("mode") == QlqC30Form.Mode.EPRO:
            raise serializers.ValidationError({"mode": [_(
                "A patient-completed form is recorded by the patient, through an ePRO link.")]})
        subject = attrs.get("subject") or getattr(self.instance, "subject", None)
        visit = attrs.get("visit") or getattr(self.instance, "visit", None)
        if visit is not None and subject is not None and visit.subject_id != subject.pk:
            raise serializers.ValidationError({"visit": "This visit belongs to another subject."})
        services.check_qlq_form(
            subject, visit,
            attrs.get("completion_date", getattr(self.instance, "completion_date", None)),
            new=self.instance is None or subject.pk != self.instance.subject_id)
        responses = {key: attrs.get(key, getattr(self.instance, key, None))
                     for key in qlq_c30.ITEM_KEYS}
        try:
            qlq_c30.score(responses)
        except ValueError as exc:
            item = str(exc).split(":", 1)[0]
            raise serializers.ValidationError({item: str(exc)}) from exc
        return attrs


class QlqC30FormViewSet(ScopedQuerysetMixin, AuditedWriteMixin, ValuesListMixin,
                        viewsets.ModelViewSet):
    """QLQ-C30 forms; saving one queues its scoring and the subject's deterioration."""

    #: A list page reads rows with their scores (``ValuesListMixin``: no model instances,
    #: issue 19); a detail page reads the form with its visit and score.
    queryset = QlqC30Form.objects.select_related("visit", "score").only(
        *own_and(QlqC30Form, "visit__qlq_c30_due"),
        *(f"score__{f.name}" for f in QlqC30Score._meta.concrete_fields))
    serializer_class = QlqC30FormSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "visit", "subject__site"]
    ordering_fields = ["id", "completion_date"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    def get_queryset(self):
        """A list page reads the visit's ``qlq_c30_due`` as a column of the form."""
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = queryset.annotate(visit_qlq_c30_due_read=F("visit__qlq_c30_due"))
        return queryset

    def perform_create(self, serializer):
        super().perform_create(serializer)
        serializer.instance.queue_scoring()

    def perform_update(self, serializer):
        super().perform_update(serializer)
        serializer.instance.queue_scoring()


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
    router.register("exposures", ExposureViewSet)
    router.register("tumour-assessments", TumourAssessmentViewSet)
    router.register("qlq-c30-forms", QlqC30FormViewSet)
    router.register("qlq-c30-deterioration", QlqC30DeteriorationViewSet)
