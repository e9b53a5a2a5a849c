"""REST API for sites and subjects: screening, eligibility, enrollment, status, unblinding."""

from __future__ import annotations

from functools import cached_property

from django.db import transaction
from django.db.models import F
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.mixins import AuditedWriteMixin, DataEntryPermission, ScopedQuerysetMixin
from edc.core.api.representation import PlainFieldsMixin, own_and
from edc.core.api.valuelists import ValuesListMixin
from edc.core.audit import change_reason
from edc.core.prepared import INTEGER_PLACEHOLDER, PreparedQuery
from trials import masking
from trials.models import EligibilityCriterion

from . import enrollment, lifecycle, services
from .models import EligibilityAnswer, Site, Subject, Unblinding, usubjid


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "trial", "code", "name", "city", "country"]


class SiteViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Site.objects.select_related("trial")
    serializer_class = SiteSerializer
    scope_site = "pk"
    filterset_fields = ["trial"]
    ordering_fields = ["id", "code"]


def arm_label_for(subject: Subject, user) -> str | None:
    """The arm's label, or ``Blinded`` for users blinded to the trial (``trials.masking``)."""
    return masking.arm_label(user, subject)


class SubjectSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    usubjid = serializers.SerializerMethodField()
    arm_label = serializers.SerializerMethodField()
    reason = serializers.CharField(
        write_only=True, required=False, help_text="Reason for change (required on update)"
    )

    class Meta:
        model = Subject
        fields = [
            "id", "trial", "site", "protocol_version", "screening_number", "subject_number",
            "usubjid", "sex", "race", "birth_date", "age_at_consent", "consent_date", "status",
            "status_date", "status_reason", "arm_label", "dose_level", "cohort",
            "frequency_level", "day0", "enrolled_on", "treatment_stop_date",
            "treatment_stop_reason", "death_date", "retired_at", "retired_reason", "reason",
        ]
        read_only_fields = [
            "protocol_version", "subject_number", "status", "status_date", "status_reason",
            "dose_level", "cohort", "frequency_level", "day0", "enrolled_on",
            "treatment_stop_date", "treatment_stop_reason", "death_date", "retired_at",
            "retired_reason",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and not roles.sees_birth_dates(request.user):
            fields.pop("birth_date")
        return fields

    def get_usubjid(self, obj) -> str | None:
        if not obj.subject_number:
            return None
        if hasattr(obj, "registry_id_read"):  # a list page (SubjectViewSet.LIST_COLUMNS)
            return usubjid(obj.registry_id_read, obj.site_code_read, obj.subject_number)
        return obj.usubjid

    def get_arm_label(self, obj) -> str | None:
        return masking.arm_label(self._user, obj, getattr(obj, "arm_label_read", None))

    @cached_property
    def _user(self):
        """The requesting user, read once per serializer (a list page asks for every row)."""
        return self.context["request"].user

    def validate(self, attrs):
        attrs.pop("reason", None)
        site = attrs.get("site") or getattr(self.instance, "site", None)
        trial = attrs.get("trial") or getattr(self.instance, "trial", None)
        if site is not None and trial is not None and site.trial_id != trial.pk:
            raise serializers.ValidationError(
                {"site": "This site does not take part in the trial."}
            )
        request = self.context["request"]
        if site is not None and not roles.scope(
            Site.objects.filter(pk=site.pk), request.user, site="pk"
        ).exists():
            raise serializers.ValidationError({"site": "You have no access to this site."})
        services.check_subject_values(  # a Django ValidationError: DRF names the field
            attrs.get("birth_date", getattr(self.instance, "birth_date", None)),
            attrs.get("consent_date", getattr(self.instance, "consent_date", None)))
        return attrs

    def create(self, validated_data):
        validated_data["protocol_version"] = validated_data["trial"].current_version()
        return super().create(validated_data)


class AnswerSerializer(serializers.Serializer):
    criterion = serializers.PrimaryKeyRelatedField(queryset=EligibilityCriterion.objects.all())
    met = serializers.BooleanField()


class EligibilitySerializer(serializers.Serializer):
    answers = AnswerSerializer(many=True)
    reason = serializers.CharField(required=False, help_text="Required to change an answer")


class EnrollSerializer(serializers.Serializer):
    enrolled_on = serializers.DateField()
    day0 = serializers.DateField(required=False)
    arm = serializers.CharField(required=False, help_text="Non-randomized designs only")


#: The reason a status takes (``subjects.lifecycle``): a fixed code for off study and follow-up.
REASON_CODES = {lifecycle.OFF_STUDY: lifecycle.OFF_STUDY_REASONS,
                lifecycle.FOLLOW_UP: lifecycle.TREATMENT_STOP_REASONS}


@extend_schema_field({"oneOf": [
    {"type": "string", "enum": list(lifecycle.OFF_STUDY_REASONS),
     "title": "off_study", "description": "status off_study: why the subject left the study"},
    {"type": "string", "enum": list(lifecycle.TREATMENT_STOP_REASONS),
     "title": "follow_up", "description": "status follow_up: why treatment stopped"},
    {"type": "string", "minLength": 1, "title": "free text",
     "description": "other statuses (e.g. screen_failure): free text"},
]})
class StatusReasonField(serializers.CharField):
    """Free text, except where the target status takes a fixed code (``REASON_CODES``)."""


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Subject.Status.choices)
    on = serializers.DateField()
    reason = StatusReasonField()

    def validate(self, attrs):
        codes = REASON_CODES.get(attrs["status"])
        if codes and attrs["reason"] not in codes:
            raise serializers.ValidationError({"reason": (
                f"{attrs['status']} takes one of {', '.join(codes)}; got {attrs['reason']!r}")})
        return attrs


class UnblindSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=10)


class RetireSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the record is retired (entered in error)")


class InvestigatorOnly(permissions.BasePermission):
    message = "Only an investigator may do this."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.INVESTIGATOR, roles.ADMIN)


class SubjectViewSet(ScopedQuerysetMixin, AuditedWriteMixin, ValuesListMixin,
                     viewsets.ModelViewSet):
    queryset = Subject.objects.select_related("trial", "site", "arm").only(
        *own_and(Subject, "trial__registry_id", "site__code", "arm__label"))
    #: A list page reads the trial's registry id, the site's code and the arm's label as
    #: columns of its rows (``ValuesListMixin``: no model instances, issue 19).
    LIST_COLUMNS = {"registry_id_read": F("trial__registry_id"), "site_code_read": F("site__code"),
                    "arm_label_read": F("arm__label")}
    list_columns = ("arm_id",)  # the arm label's masking asks whether there is an arm
    serializer_class = SubjectSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["trial", "site", "status", "cohort", "dose_level"]
    ordering_fields = ["id", "screening_number", "consent_date", "enrolled_on"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = queryset.annotate(**self.LIST_COLUMNS)
        elif self.action == "enroll":
            queryset = enrollment.locked_for_enrollment(queryset)
        return queryset

    #: The answer's subject, read after the write (``_respond``): compiled once.
    ANSWER = PreparedQuery(
        lambda: Subject.objects.select_related("trial", "site", "arm").filter(
            pk=INTEGER_PLACEHOLDER).order_by(), (INTEGER_PLACEHOLDER,))

    def _respond(self, subject, code=status.HTTP_200_OK):
        (subject,) = self.ANSWER.run(subject.pk)
        subject = self.read_after_write(subject)
        return Response(SubjectSerializer(subject, context=self.get_serializer_context()).data,
                        status=code)

    @extend_schema(request=EligibilitySerializer, responses={200: SubjectSerializer})
    @action(detail=True, methods=["post"])
    def eligibility(self, request, pk=None):
        """Answer the protocol version's criteria (inclusion met / exclusion present)."""
        subject = self.get_object()
        data = EligibilitySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answers = data.validated_data["answers"]
        foreign = [a["criterion"].pk for a in answers
                   if a["criterion"].protocol_version_id != subject.protocol_version_id]
        if foreign:
            raise serializers.ValidationError(
                {"answers": f"criteria {foreign} belong to another protocol version"})
        existing = {a.criterion_id: a for a in subject.eligibility_answers.all()}
        changed = [a for a in answers if a["criterion"].pk in existing
                   and existing[a["criterion"].pk].met != a["met"]]
        reason = data.validated_data.get("reason")
        if changed and not reason:
            raise serializers.ValidationError(
                {"reason": "A reason for change is required to change a saved answer."})
        with transaction.atomic(), change_reason(reason or "eligibility answered", request.user):
            for answer in answers:
                row = existing.get(answer["criterion"].pk)
                if row is None:
                    EligibilityAnswer.objects.create(subject=subject, criterion=answer["criterion"],
                                                     met=answer["met"])
                elif row.met != answer["met"]:
                    row.met = answer["met"]
                    row.save()
        problems = enrollment.eligibility_problems(subject)
        body = self._respond(subject).data
        return Response({**body, "eligibility_problems": problems})

    @extend_schema(request=EnrollSerializer, responses={200: SubjectSerializer})
    @action(detail=True, methods=["post"])
    def enroll(self, request, pk=None):
        """Enroll: arm (randomized or open cohort), dose level, day 0 and study id (409 if not)."""
        with transaction.atomic():
            subject = self.get_object()  # scoped and locked (get_queryset): read once
            data = EnrollSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            v = data.validated_data
            subject = enrollment.enroll(subject, enrolled_on=v["enrolled_on"],
                                        day0=v.get("day0"), arm_code=v.get("arm"),
                                        user=request.user, locked=True)
        return self._respond(subject)

    @extend_schema(request=StatusSerializer, responses={200: SubjectSerializer})
    @action(detail=True, methods=["post"])
    def status(self, request, pk=None):
        """Move along the status graph (screen failure, on treatment, follow-up, off study)."""
        subject = self.get_object()
        data = StatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["status"] == lifecycle.OFF_STUDY and v["reason"] == "death":
            subject = services.record_death(subject, v["on"], request.user)
        else:
            subject = services.change_status(subject, v["status"], v["on"], v["reason"],
                                             request.user)
        return self._respond(subject)

    @extend_schema(request=RetireSerializer, responses={200: SubjectSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """Retire a subject entered in error, with the reason (kept, never deleted; a
        randomized subject is refused: intention to treat)."""
        subject = self.get_object()
        data = RetireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = services.retire_subject(subject, data.validated_data["reason"], request.user)
        return self._respond(subject)

    @extend_schema(request=UnblindSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], permission_classes=[InvestigatorOnly])
    def unblind(self, request, pk=None):
        """Emergency unblinding of this one subject: recorded, audited, reason required."""
        subject = self.get_object()
        data = UnblindSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not subject.trial.is_blinded:
            raise serializers.ValidationError({"subject": "this trial is not blinded"})
        if subject.arm is None:
            raise serializers.ValidationError({"subject": "this subject has no allocation yet"})
        if not roles.scope(Subject.objects.filter(pk=subject.pk), request.user).exists():
            raise PermissionDenied()
        reason = data.validated_data["reason"]
        with transaction.atomic(), change_reason(f"emergency unblinding: {reason}",
                                                 request.user):
            record = Unblinding.objects.create(subject=subject, requested_by=request.user,
                                               reason=reason)
        return Response({"subject": subject.pk, "arm": subject.arm.label,
                         "arm_code": subject.arm.code, "unblinding": record.pk,
                         "recorded_at": record.created_at})


def register(router) -> None:
    router.register("sites", SiteViewSet)
    router.register("subjects", SubjectViewSet)
