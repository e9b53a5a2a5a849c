"""REST API for sites and subjects."""

from rest_framework import serializers, viewsets

from edc import roles
from edc.api.mixins import AuditedWriteMixin, DataEntryPermission, ScopedQuerysetMixin

from .models import Site, Subject


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


class SubjectSerializer(serializers.ModelSerializer):
    usubjid = serializers.SerializerMethodField()
    arm_label = serializers.SerializerMethodField()
    reason = serializers.CharField(
        write_only=True, required=False, help_text="Reason for change (required on update)"
    )

    class Meta:
        model = Subject
        fields = [
            "id", "trial", "site", "protocol_version", "screening_number", "subject_number",
            "usubjid", "sex", "birth_date", "age_at_consent", "consent_date", "status",
            "status_date", "status_reason", "arm_label", "dose_level", "day0", "enrolled_on",
            "reason",
        ]
        read_only_fields = [
            "protocol_version", "subject_number", "status", "status_date", "status_reason",
            "dose_level", "day0", "enrolled_on",
        ]

    def get_usubjid(self, obj) -> str | None:
        return obj.usubjid if obj.subject_number else None

    def get_arm_label(self, obj) -> str | None:
        """The arm, or its neutral blinded label for users without unblinded access."""
        if obj.arm is None:
            return None
        request = self.context.get("request")
        if obj.trial.is_blinded and not roles.can_see_unblinded(request.user, obj.trial):
            return obj.arm.blinded_label
        return obj.arm.label

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
        return attrs

    def create(self, validated_data):
        validated_data["protocol_version"] = validated_data["trial"].current_version()
        return super().create(validated_data)


class SubjectViewSet(ScopedQuerysetMixin, AuditedWriteMixin, viewsets.ModelViewSet):
    queryset = Subject.objects.select_related("trial", "site", "arm")
    serializer_class = SubjectSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["trial", "site", "status"]
    ordering_fields = ["id", "screening_number", "consent_date"]


def register(router) -> None:
    router.register("sites", SiteViewSet)
    router.register("subjects", SubjectViewSet)
