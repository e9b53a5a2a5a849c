"""Serializers of the data-management API (read shapes and action payloads)."""

from __future__ import annotations

from rest_framework import serializers

from .locks import LEVELS
from .models import Lock, ProtocolDeviation, Query, QueryMessage, Signature, Verification
from .targets import label_of

TARGET_FIELDS = ["form", "object_id", "target_label", "trial", "site", "subject", "visit"]


class _Username(serializers.CharField):
    def to_representation(self, value):
        return value.get_username() if value is not None else None


def username() -> serializers.CharField:
    return _Username(read_only=True, allow_null=True)


class TargetedSerializer(serializers.ModelSerializer):
    form = serializers.SerializerMethodField(help_text="The form, as app_label.model")

    def get_form(self, obj) -> str:
        return label_of(obj.content_type)


class QueryMessageSerializer(serializers.ModelSerializer):
    author = username()

    class Meta:
        model = QueryMessage
        fields = ["action", "text", "author", "created_at"]
        read_only_fields = fields


class QuerySerializer(TargetedSerializer):
    opened_by = username()
    answered_by = username()
    closed_by = username()
    age_days = serializers.IntegerField(read_only=True)
    messages = QueryMessageSerializer(many=True, read_only=True)

    class Meta:
        model = Query
        fields = ["id", *TARGET_FIELDS, "field_name", "text", "state", "origin", "check_code",
                  "opened_by", "opened_at", "age_days", "answer", "answered_by",
                  "answered_at", "closed_by", "closed_at", "messages"]
        read_only_fields = fields


class TargetInput(serializers.Serializer):
    form = serializers.CharField(help_text="app_label.model, e.g. visits.exposure")
    object_id = serializers.IntegerField(min_value=1)
    field_name = serializers.CharField(required=False, allow_blank=True, default="")


class QueryCreateSerializer(TargetInput):
    text = serializers.CharField()


class QueryActionSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, default="")
    value = serializers.JSONField(
        required=False, help_text="answer only: the corrected value of the queried field")


class RunEditChecksSerializer(serializers.Serializer):
    subject = serializers.IntegerField(min_value=1)


class VerificationSerializer(TargetedSerializer):
    verified_by = username()
    cleared_by = username()

    class Meta:
        model = Verification
        fields = ["id", *TARGET_FIELDS, "field_name", "state", "verified_by", "verified_at",
                  "cleared_by", "cleared_at", "cleared_reason"]
        read_only_fields = fields


class SignatureSerializer(TargetedSerializer):
    signed_by = username()
    invalidated_by = username()
    manifestation = serializers.CharField(read_only=True)

    class Meta:
        model = Signature
        fields = ["id", "level", *TARGET_FIELDS, "state", "signed_by", "printed_name",
                  "meaning", "signed_at", "manifestation", "data_digest", "invalidated_by",
                  "invalidated_at", "invalidated_reason"]
        read_only_fields = fields


class SignInput(serializers.Serializer):
    level = serializers.ChoiceField(choices=Signature.Level.choices)
    object_id = serializers.IntegerField(min_value=1, help_text="The subject or visit id")
    password = serializers.CharField(write_only=True, trim_whitespace=False,
                                     style={"input_type": "password"})
    meaning = serializers.CharField(required=False, allow_blank=True, default="")


class LockSerializer(TargetedSerializer):
    changed_by = username()

    class Meta:
        model = Lock
        fields = ["id", "level", *TARGET_FIELDS, "state", "reason", "changed_by",
                  "changed_at"]
        read_only_fields = fields


class LockInput(serializers.Serializer):
    level = serializers.ChoiceField(choices=[(lv, lv) for lv in LEVELS])
    action = serializers.ChoiceField(choices=[("freeze", "freeze"), ("lock", "lock")])
    form = serializers.CharField(required=False, help_text="form level: app_label.model")
    object_id = serializers.IntegerField(
        min_value=1, help_text="the record, visit, subject or trial id (per level)")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the data is unlocked (audited)")


class DeviationSerializer(TargetedSerializer):
    """A protocol deviation; product names in the description are masked for users blinded
    to the trial (``trials.masking.text_masker``)."""

    reported_by = username()
    resolved_by = username()
    description = serializers.SerializerMethodField()

    class Meta:
        model = ProtocolDeviation
        fields = ["id", *TARGET_FIELDS, "category", "description", "occurred_on",
                  "check_code", "state", "reported_by", "reported_at", "query",
                  "resolved_by", "resolved_at", "resolution"]
        read_only_fields = fields

    def get_description(self, obj) -> str:
        from trials.masking import text_masker

        return text_masker(self.context["request"].user, obj.subject)(obj.description)


class DeviationCreateSerializer(TargetInput):
    category = serializers.ChoiceField(choices=ProtocolDeviation.Category.choices)
    description = serializers.CharField()
    occurred_on = serializers.DateField(required=False)


class ResolutionInput(serializers.Serializer):
    resolution = serializers.CharField()
