"""REST API of ePRO: issue, list and revoke one-time links; record data clarifications."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.mixins import DataEntryPermission, ScopedQuerysetMixin
from visits.api import VisitScopedField
from visits.models import QlqC30Form

from . import services
from .models import EproClarification, EproLink
from .throttling import IssueThrottle

SCOPE = {"scope_trial": "subject__trial", "scope_site": "subject__site"}


class EproLinkSerializer(serializers.ModelSerializer):
    visit = VisitScopedField()
    language = serializers.CharField(
        required=False, help_text="en, zh-Hans or fr (default: the trial's ePRO language)")
    state = serializers.SerializerMethodField()

    class Meta:
        model = EproLink
        fields = ["id", "subject", "visit", "instrument", "language", "state", "expires_at",
                  "opened_at", "submitted_at", "device_submitted_at", "form", "revoked_at",
                  "revoked_reason", "created_at"]
        read_only_fields = [f for f in fields if f not in ("visit", "language")]

    def get_state(self, obj) -> str:
        return obj.state()


class IssuedLinkSerializer(EproLinkSerializer):
    url = serializers.CharField(read_only=True, help_text="Shown once: only a digest of its "
                                                          "token is kept")
    qr_svg = serializers.CharField(read_only=True, help_text="The URL as a QR code (SVG)")

    class Meta(EproLinkSerializer.Meta):
        fields = [*EproLinkSerializer.Meta.fields, "url", "qr_svg"]


class RevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text=_("Why the link is withdrawn"))


class EproLinkViewSet(ScopedQuerysetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """One-time ePRO links for a visit's scheduled QLQ-C30: issue (POST: the URL and QR code
    are in this answer only), list, revoke. The token itself is never stored or shown again."""

    queryset = EproLink.objects.select_related("subject", "visit")
    serializer_class = EproLinkSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "visit", "subject__site"]
    ordering_fields = ["id", "created_at"]
    scope_trial, scope_site = SCOPE["scope_trial"], SCOPE["scope_site"]

    def get_throttles(self):
        return [IssueThrottle()] if self.action == "create" else super().get_throttles()

    @extend_schema(request=EproLinkSerializer, responses={201: IssuedLinkSerializer})
    def create(self, request, *args, **kwargs):
        data = EproLinkSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        link, token = services.issue_link(data.validated_data["visit"],
                                          data.validated_data.get("language"), request.user)
        url = services.link_url(token)
        link.url, link.qr_svg = url, services.qr_svg(url)
        return Response(IssuedLinkSerializer(link, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=RevokeSerializer, responses={200: EproLinkSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Withdraw an open link (reason required); the patient can no longer use it."""
        data = RevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.revoke_link(self.get_object(), data.validated_data["reason"],
                                    request.user)
        return Response(self.get_serializer(link).data)


class FormScopedField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return roles.scope(QlqC30Form.objects.all(), self.context["request"].user,
                           trial="subject__trial", site="subject__site")


class EproClarificationSerializer(serializers.ModelSerializer):
    form = FormScopedField()

    class Meta:
        model = EproClarification
        fields = ["id", "form", "subject", "item", "old_value", "new_value", "reason",
                  "patient_confirmation", "confirmed_on", "recorded_by", "created_at"]
        read_only_fields = ["subject", "old_value", "recorded_by", "created_at"]
        extra_kwargs = {"new_value": {"required": True, "allow_null": True}}

    def create(self, validated_data):
        return services.clarify(validated_data.pop("form"),
                                user=self.context["request"].user, **validated_data)


class EproClarificationViewSet(ScopedQuerysetMixin, mixins.CreateModelMixin,
                               viewsets.ReadOnlyModelViewSet):
    """Corrections of patient-completed answers: each with the patient's confirmation and a
    reason (the form is never changed otherwise), audited and rescored."""

    queryset = EproClarification.objects.select_related("form", "subject")
    serializer_class = EproClarificationSerializer
    permission_classes = [DataEntryPermission]
    filterset_fields = ["subject", "form"]
    ordering_fields = ["id", "created_at"]
    scope_trial, scope_site = SCOPE["scope_trial"], SCOPE["scope_site"]


def register(router) -> None:
    router.register("epro-links", EproLinkViewSet)
    router.register("epro-clarifications", EproClarificationViewSet)
