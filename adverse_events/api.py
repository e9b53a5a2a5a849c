"""REST API: adverse events (with grade episodes and attributions), DLT/TI flags, CTCAE terms.

* ``/api/v1/adverse-events/``: create with nested ``grade_episodes`` and ``attributions``;
  updates need ``reason``; ``POST {id}/report-sae/`` records the report to the sponsor;
  ``GET {id}/history/`` is the audit trail. Filters: subject, site, serious, grade, term,
  ``sae_status`` (not_serious, due, overdue, reported, reported_late, open = due or overdue;
  comma-separated), ``kind`` (AEs with an effective DLT/TI flag of that kind).
* ``/api/v1/toxicity-flags/``: read; ``POST {id}/override/`` (investigators) with a reason.
* ``/api/v1/ctcae-terms/?search=``: the CTCAE v5.0 dictionary, by term or MedDRA code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.filters import PolicyFilterBackend, PolicyOrderingFilter
from edc.core.api.mixins import AuditedWriteMixin, DataEntryPermission, ScopedQuerysetMixin
from edc.core.api.representation import PlainFieldsMixin
from edc.core.prepared import INTEGER_PLACEHOLDER, PreparedQuery, PreparedShapes
from subjects.models import Subject
from trials.api_fields import ProductCodeField
from trials.masking import shown_product, text_masker
from trials.models import Intervention
from visits.models import Exposure

from . import services
from .models import EFFECTIVE_FLAG, AdverseEvent, Attribution, CtcaeTerm, GradeEpisode, ToxicityFlag
from .validation import AttributionDraft, EpisodeDraft

SUBJECT_SCOPE = {"scope_trial": "subject__trial", "scope_site": "subject__site"}
#: What stands for the ids given to the queries compiled once (``edc.core.prepared``).
ID, SECOND_ID = INTEGER_PLACEHOLDER, INTEGER_PLACEHOLDER + 1


def _drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    return serializers.ValidationError(detail)


class AnnotatedRows(list):
    """The active rows of a relation as the queryset annotated them (JSON objects, see
    :func:`adverse_event_queryset`), with the AE they belong to."""

    def __init__(self, rows, owner):
        super().__init__(rows)
        self.owner = owner


class ActiveListSerializer(serializers.ListSerializer):
    """Shows only rows that are not retired: read from the queryset's ``<field>_rows``
    annotation when there (no model instance per row), else from the relation."""

    def get_attribute(self, instance):
        rows = getattr(instance, f"{self.field_name}_rows", None)
        if rows is not None:
            return AnnotatedRows(rows, instance)
        return super().get_attribute(instance)

    def to_representation(self, data):
        if isinstance(data, AnnotatedRows):
            return [self.child.annotated_representation(row, data.owner) for row in data]
        rows = data.all() if hasattr(data, "all") else data
        return super().to_representation([r for r in rows if r.retired_at is None])


class CtcaeTermSerializer(serializers.ModelSerializer):
    allowed_grades = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = CtcaeTerm
        fields = ["id", "meddra_code", "term", "soc", "grade_1", "grade_2", "grade_3",
                  "grade_4", "grade_5", "definition", "navigational_note", "allowed_grades"]
        read_only_fields = fields


class GradeEpisodeSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    id = serializers.IntegerField(required=False, help_text="Give it to change a saved episode")

    class Meta:
        model = GradeEpisode
        fields = ["id", "grade", "start_date", "end_date"]
        list_serializer_class = ActiveListSerializer

    def annotated_representation(self, row: dict, ae) -> dict:
        return row  # already these fields, dates in ISO 8601 (EPISODE_ROWS)


def _protocol_products(exposures: bool) -> PreparedQuery:
    """The interventions of an intervention's protocol version (by its id), unordered (the
    model's ordering joins the protocol version and the trial for nothing); with
    ``exposures``, each annotated with a subject's (by its id) active exposures as
    ``{intervention, on}`` objects (``_exposures``: the same on every row)."""
    def build():
        products = Intervention.objects.filter(protocol_version__in=Intervention.objects.filter(
            pk=ID).values("protocol_version")).order_by()
        if exposures:
            products = products.annotate(_exposures=ArraySubquery(
                Exposure.objects.filter(subject=SECOND_ID, retired_at__isnull=True)
                .order_by().values(row=JSONObject(intervention="intervention_id",
                                                  on="administered_on"))))
        return products
    return PreparedQuery(build, (ID, SECOND_ID) if exposures else (ID,))


PRODUCTS, PRODUCTS_AND_EXPOSURES = _protocol_products(False), _protocol_products(True)
TERM = PreparedQuery(lambda: CtcaeTerm.objects.filter(pk=ID).order_by(), (ID,))


class CtcaeTermField(serializers.PrimaryKeyRelatedField):
    """A CTCAE term, read (by an integer id) by a query compiled once (``edc.core.prepared``:
    every AE create reads one), unless the create's read of its subject read it already
    (``terms`` in the context: id -> the term, None where there is none;
    :meth:`AdverseEventSerializer.to_internal_value`)."""

    def to_internal_value(self, data):
        if type(data) is not int:
            return super().to_internal_value(data)
        read = self.context.get("terms", {})
        found = [read[data]] if data in read else TERM.run(data)
        if not found or found[0] is None:
            self.fail("does_not_exist", pk_value=data)
        return found[0]


class ProtocolInterventionField(serializers.PrimaryKeyRelatedField):
    """An intervention, read (by an integer id) with the other interventions of its protocol
    version, which the context keeps (``interventions``: protocol version id -> list) for
    the AE's attribution targets: the protocol's products are read once per create, by a
    query compiled once (``edc.core.prepared``).

    On a create whose subject the subject field read locked (``locked_subject`` in the
    context: that read came first, in this transaction), the first read also reads the
    subject's exposures (``exposures``: subject id -> ``(intervention id, administered on)``
    pairs, for the attribution checks): one statement, run after the lock was granted, so
    it sees every exposure committed before, also by a transaction that held the subject's
    lock while the create waited (the locking statement's own snapshot, taken before its
    wait, would miss it)."""

    def to_internal_value(self, data):
        if type(data) is not int:
            return super().to_internal_value(data)
        known = self.context.setdefault("interventions", {})
        found = next((i for group in known.values() for i in group if i.pk == data), None)
        if found is None:
            subject = self.context.get("locked_subject")
            with_exposures = subject is not None and "exposures" not in self.context
            group = (PRODUCTS_AND_EXPOSURES.run(data, subject.pk) if with_exposures
                     else PRODUCTS.run(data))
            if not group:
                self.fail("does_not_exist", pk_value=data)
            if with_exposures:
                self.context["exposures"] = {subject.pk: [
                    (row["intervention"], dt.date.fromisoformat(row["on"]))
                    for row in group[0]._exposures]}
            known[group[0].protocol_version_id] = group
            found = next(i for i in group if i.pk == data)
        return found


class AttributionSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    intervention = ProtocolInterventionField(queryset=Intervention.objects.all())
    intervention_code = ProductCodeField("intervention.code", "adverse_event.subject")

    class Meta:
        model = Attribution
        fields = ["intervention", "intervention_code", "level"]
        list_serializer_class = ActiveListSerializer

    def annotated_representation(self, row: dict, ae) -> dict:
        """The row of ATTRIBUTION_ROWS, its product code as the user may see it."""
        return {**row, "intervention_code": shown_product(
            self.context["request"].user, ae.subject, row["intervention_code"])}


class ScopedSubjectField(serializers.PrimaryKeyRelatedField):
    """A subject in the user's scope; with ``lock_subject`` in the context (a create, inside
    its transaction) read locked as the service locks it (``services.locked_subjects``),
    or taken from the create's read of it (``subjects`` in the context: id -> the subject
    read so, None where none is in scope; :meth:`AdverseEventSerializer.to_internal_value`)."""

    def get_queryset(self):
        subjects = roles.scope(Subject.objects.all(), self.context["request"].user)
        return services.locked_subjects(subjects) if self.context.get("lock_subject") else subjects

    def to_internal_value(self, data):
        """The subject; read locked, it is also the context's ``locked_subject``."""
        read = self.context.get("subjects", {})
        if type(data) is int and data in read:
            subject = read[data]
            if subject is None:
                self.fail("does_not_exist", pk_value=data)
        else:
            subject = super().to_internal_value(data)
        if self.context.get("lock_subject"):
            self.context["locked_subject"] = subject
        return subject


def _locked_subject_and_term(shape, subject_id, term_id, *scope_ids):
    """A subject by id in a scope of ``shape`` (``roles.scoped_as``), locked as
    ``services.locked_subjects`` locks it, with a term by id as a JSON object (``_term``:
    null where there is none), or without (``term_id`` None)."""
    scope_shape, with_term = shape
    subjects = services.locked_subjects(roles.scoped_as(
        Subject.objects.all(), scope_shape, scope_ids)).filter(pk=subject_id).order_by()
    if not with_term:
        return subjects
    return subjects.annotate(_term=Subquery(CtcaeTerm.objects.filter(pk=term_id).order_by().values(
        row=JSONObject(**{f.attname: f.attname for f in CtcaeTerm._meta.concrete_fields}))))


#: The create's first read: its subject, in the user's scope and locked, and its term, in one
#: statement compiled once per scope shape (``edc.core.prepared.PreparedShapes``).
LOCKED_SUBJECT_AND_TERM = PreparedShapes(
    lambda shape, subject_id, *ids: _locked_subject_and_term(
        shape, subject_id, *(ids if shape[1] else (None, *ids))))


class SaeClockSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["due", "overdue", "reported", "reported_late", "not_serious"])
    report_due = serializers.DateTimeField()
    expedited_due = serializers.DateTimeField(allow_null=True)
    expedited_days = serializers.IntegerField(allow_null=True)
    basis = serializers.CharField()


class ReportSaeSerializer(serializers.Serializer):
    reported_at = serializers.DateTimeField(required=False,
                                            help_text="When it was reported (default: now)")


class RetireSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the record is retired (entered in error)")


class AdverseEventSerializer(PlainFieldsMixin, serializers.ModelSerializer):
    subject = ScopedSubjectField()
    term = CtcaeTermField(queryset=CtcaeTerm.objects.all())
    term_name = serializers.CharField(read_only=True)
    meddra_code = serializers.CharField(read_only=True)
    grade_episodes = GradeEpisodeSerializer(many=True)
    attributions = AttributionSerializer(many=True, required=False)
    ongoing = serializers.BooleanField(read_only=True)
    sae = serializers.SerializerMethodField()
    reason = serializers.CharField(write_only=True, required=False,
                                   help_text="Reason for change (required on update)")

    class Meta:
        model = AdverseEvent
        fields = [
            "id", "subject", "term", "term_name", "meddra_code", "verbatim_term", "onset_date",
            "resolution_date", "ongoing", "grade", "grade_episodes", "attributions", "serious",
            *AdverseEvent.CRITERIA, "expected", "action_taken", "outcome", "aware_at",
            "reported_at", "reported_by", "sae_overdue_raised_at", "death_date", "sae",
            "created_at", "updated_at", "retired_at", "reason",
        ]
        read_only_fields = ["grade", "reported_at", "reported_by", "sae_overdue_raised_at",
                            "created_at", "updated_at", "retired_at"]

    @extend_schema_field(SaeClockSerializer(allow_null=True))
    def get_sae(self, ae) -> dict | None:
        """The SAE clock (ICH E2A): 24 h report status; SUSAR expedited deadline if any."""
        deadlines = ae.sae_deadlines()
        if deadlines is None:
            return None
        return {"status": ae.sae_status(timezone.now()), "report_due": deadlines.report_due,
                "expedited_due": deadlines.expedited_due,
                "expedited_days": deadlines.expedited_days, "basis": deadlines.basis}

    def to_internal_value(self, data):
        """On a create (``lock_subject``) given a subject by an integer id: the subject, in the
        user's scope and locked, and the term (given by an integer id) read first, in one
        statement, for the subject and term fields (``subjects``, ``terms``: what was found,
        None for what was not); otherwise each field reads its own."""
        if self.context.get("lock_subject") and isinstance(data, Mapping):
            self._read_subject_and_term(data.get("subject"), data.get("term"))
        return super().to_internal_value(data)

    def _read_subject_and_term(self, subject_id, term_id) -> None:
        shape, scope_ids = roles.scope_shape(self.context["request"].user)
        if type(subject_id) is not int or shape == roles.NOTHING:
            return
        with_term = type(term_id) is int
        found = LOCKED_SUBJECT_AND_TERM.run(
            (shape, with_term), subject_id, *((term_id,) if with_term else ()), *scope_ids)
        self.context["subjects"] = {subject_id: found[0] if found else None}
        if found and with_term:
            row = found[0]._term
            self.context["terms"] = {term_id: None if row is None else CtcaeTerm.from_db(
                "default", [f.attname for f in CtcaeTerm._meta.concrete_fields],
                [row[f.attname] for f in CtcaeTerm._meta.concrete_fields])}

    def validate(self, attrs):
        """Shape only: the clinical rules (``validation.validate``) run once, in
        ``services.save_adverse_event`` under the subject's row lock, where a refusal is a 400
        and nothing is saved."""
        attrs.pop("reason", None)
        ae = self.instance
        if ae is not None and "subject" in attrs and attrs["subject"].pk != ae.subject_id:
            raise serializers.ValidationError({"subject": "The subject of an AE cannot change."})
        attrs["_episodes"], attrs["_attributions"] = self._drafts(attrs)
        return attrs

    def _drafts(self, attrs):
        episodes = attrs.pop("grade_episodes", None)
        attributions = attrs.pop("attributions", None)
        if self.instance is None and attributions is None:
            attributions = []
        if episodes is not None:
            episodes = [EpisodeDraft(e["grade"], e["start_date"], e.get("end_date"), e.get("id"))
                        for e in episodes]
        if attributions is not None:
            attributions = [AttributionDraft(a["intervention"], a["level"])
                            for a in attributions]
        return episodes, attributions

    def _save(self, validated, instance=None):
        episodes, attributions = validated.pop("_episodes"), validated.pop("_attributions")
        subject = validated.pop("subject", None) or instance.subject
        user = self.context["request"].user
        locked = instance is None and self.context.get("lock_subject", False)
        try:
            ae = services.save_adverse_event(
                subject, validated, episodes, attributions, instance=instance, user=user,
                locked=locked, interventions=self.context.get("interventions"),
                exposures=self.context.get("exposures"))
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        if instance is not None:
            return adverse_event_queryset().get(pk=ae.pk)
        return _as_read(ae)

    def create(self, validated_data):
        return self._save(validated_data)

    def update(self, instance, validated_data):
        return self._save(validated_data, instance)


#: The active grade episodes of an AE as JSON objects, in the API's shape.
EPISODE_ROWS = ArraySubquery(
    GradeEpisode.objects.filter(adverse_event=OuterRef("pk"), retired_at__isnull=True)
    .order_by("start_date", "id")
    .values(row=JSONObject(id="id", grade="grade", start_date="start_date",
                           end_date="end_date")))
#: The active attributions of an AE as JSON objects (the product code still unmasked).
ATTRIBUTION_ROWS = ArraySubquery(
    Attribution.objects.filter(adverse_event=OuterRef("pk"), retired_at__isnull=True)
    .order_by("intervention__protocol_version", "intervention__code")
    .values(row=JSONObject(intervention="intervention_id",
                           intervention_code="intervention__code", level="level")))


def _as_read(ae: AdverseEvent) -> AdverseEvent:
    """A new AE with what :func:`adverse_event_queryset` annotates, from the rows just written
    (``services.save_adverse_event``: ``created_rows``), not read back (issue 19)."""
    episodes, attributions = ae.created_rows
    ae.term_name, ae.meddra_code = ae.term.term, ae.term.meddra_code
    ae.grade_episodes_rows = [
        {"id": e.pk, "grade": e.grade, "start_date": e.start_date.isoformat(),
         "end_date": e.end_date and e.end_date.isoformat()}
        for e in sorted(episodes, key=lambda e: (e.start_date, e.pk))]
    ae.attributions_rows = [
        {"intervention": a.intervention_id, "intervention_code": a.intervention.code,
         "level": a.level}
        for a in sorted(attributions, key=lambda a: (a.intervention.protocol_version_id,
                                                     a.intervention.code))]
    return ae


def adverse_event_queryset():
    """AEs as the API reads them, a page in one query: the term's name and code and the
    active grade episodes and attributions are annotated (``<relation>_rows``), so a page
    builds one AE and one subject (trial and protocol version only) per row."""
    return AdverseEvent.objects.select_related("subject").only(
        *(f.name for f in AdverseEvent._meta.concrete_fields),
        "subject__trial_id", "subject__protocol_version_id",
    ).annotate(term_name=F("term__term"), meddra_code=F("term__meddra_code"),
               grade_episodes_rows=EPISODE_ROWS, attributions_rows=ATTRIBUTION_ROWS)


class AdverseEventFilter(filters.FilterSet):
    site = filters.NumberFilter(field_name="subject__site")
    trial = filters.NumberFilter(field_name="subject__trial")
    meddra_code = filters.CharFilter(field_name="term__meddra_code")
    sae_status = filters.CharFilter(method="filter_sae_status",
                                    help_text="due, overdue, open, reported, reported_late, "
                                              "not_serious (comma-separated)")
    kind = filters.ChoiceFilter(choices=ToxicityFlag.Kind.choices, method="filter_kind",
                                help_text="AEs with an effective DLT/TI flag of this kind")

    class Meta:
        model = AdverseEvent
        fields = ["subject", "serious", "grade", "term"]

    def filter_sae_status(self, queryset, name, value):
        statuses = [v.strip() for v in value.split(",") if v.strip()]
        if not statuses:
            return queryset
        try:
            return queryset.sae_status(*statuses)
        except KeyError as exc:
            raise serializers.ValidationError(
                {"sae_status": f"Unknown SAE status {exc.args[0]!r}."}) from None

    def filter_kind(self, queryset, name, value):
        return queryset.filter(Exists(ToxicityFlag.objects.filter(
            EFFECTIVE_FLAG, adverse_event=OuterRef("pk"), kind=value)))


class AdverseEventViewSet(ScopedQuerysetMixin, AuditedWriteMixin, viewsets.ModelViewSet):
    """Adverse events on CTCAE v5.0; saving one queues the subject's DLT/TI evaluation."""

    queryset = adverse_event_queryset()
    serializer_class = AdverseEventSerializer
    permission_classes = [DataEntryPermission]
    filterset_class = AdverseEventFilter
    ordering_fields = ["id", "onset_date", "aware_at"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    def create(self, request, *args, **kwargs):
        # One transaction from validation to commit (not a docstring: the OpenAPI schema
        # shows the view's): the subject is read once, in scope and locked (lock_subject),
        # and services.save_adverse_event writes in that transaction under that lock (no
        # savepoint of its own); a refusal rolls it back.
        with transaction.atomic():
            serializer = self.get_serializer(data=request.data, context={
                **self.get_serializer_context(), "lock_subject": True})
            serializer.is_valid(raise_exception=True)
            self.perform_create(serializer)
        return Response(serializer.data, status=201,
                        headers=self.get_success_headers(serializer.data))

    def perform_create(self, serializer):
        serializer.save()  # in create's transaction (no savepoint nested for nothing)

    @extend_schema(request=ReportSaeSerializer, responses={200: AdverseEventSerializer})
    @action(detail=True, methods=["post"], url_path="report-sae",
            serializer_class=ReportSaeSerializer)
    def report_sae(self, request, pk=None):
        """Record that the SAE was reported to the sponsor (``reported_at``, default now)."""
        ae = self.get_object()
        body = ReportSaeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.report_sae(ae, user=request.user,
                            reported_at=body.validated_data.get("reported_at"))
        ae = self.get_queryset().get(pk=ae.pk)
        return Response(AdverseEventSerializer(ae, context=self.get_serializer_context()).data)

    @extend_schema(request=RetireSerializer, responses={200: AdverseEventSerializer})
    @action(detail=True, methods=["post"], serializer_class=RetireSerializer)
    def retire(self, request, pk=None):
        """Retire an AE entered in error, with the reason (kept, never deleted; it leaves the
        SAE clock, the DLT/TI evaluation and the exports; a grade 5 AE is refused)."""
        ae = self.get_object()
        body = RetireSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.retire_adverse_event(ae, body.validated_data["reason"], request.user)
        ae = self.get_queryset().get(pk=ae.pk)
        return Response(AdverseEventSerializer(ae, context=self.get_serializer_context()).data)


class ToxicityFlagSerializer(serializers.ModelSerializer):
    effective = serializers.BooleanField(read_only=True)
    details = serializers.JSONField(read_only=True)

    class Meta:
        model = ToxicityFlag
        fields = ["id", "subject", "adverse_event", "rule_code", "kind", "computed", "effective",
                  "reason", "details", "evaluated_at", "override", "override_reason",
                  "override_by", "override_at"]
        read_only_fields = fields

    def to_representation(self, flag):
        """The reason names products: masked for users blinded to the trial."""
        data = super().to_representation(flag)
        mask = text_masker(self.context["request"].user, flag.subject)
        data["reason"] = mask(data["reason"])
        return data


class OverrideSerializer(serializers.Serializer):
    override = serializers.BooleanField(allow_null=True,
                                        help_text="true/false, or null to clear the override")
    reason = serializers.CharField()


class ToxicityFlagFilter(filters.FilterSet):
    site = filters.NumberFilter(field_name="subject__site")
    effective = filters.BooleanFilter(method="filter_effective")

    class Meta:
        model = ToxicityFlag
        fields = ["subject", "adverse_event", "kind", "rule_code", "computed"]

    def filter_effective(self, queryset, name, value):
        return queryset.filter(EFFECTIVE_FLAG) if value else queryset.exclude(EFFECTIVE_FLAG)


class ToxicityFlagViewSet(ScopedQuerysetMixin, AuditedWriteMixin, viewsets.ReadOnlyModelViewSet):
    """DLT/TI flags computed by the rules; investigators may override one with a reason."""

    queryset = ToxicityFlag.objects.select_related("subject", "adverse_event")
    serializer_class = ToxicityFlagSerializer
    filterset_class = ToxicityFlagFilter
    ordering_fields = ["id", "evaluated_at"]
    scope_trial, scope_site = SUBJECT_SCOPE["scope_trial"], SUBJECT_SCOPE["scope_site"]

    @extend_schema(request=OverrideSerializer, responses={200: ToxicityFlagSerializer})
    @action(detail=True, methods=["post"], serializer_class=OverrideSerializer)
    def override(self, request, pk=None):
        """Override the computed flag (true/false; null clears it), with a reason."""
        if not roles.has_role(request.user, roles.INVESTIGATOR, roles.ADMIN):
            raise PermissionDenied("Only an investigator may override a DLT/TI flag.")
        flag = self.get_object()
        payload = OverrideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        flag = services.override_flag(flag, payload.validated_data["override"],
                                      payload.validated_data["reason"], request.user)
        return Response(ToxicityFlagSerializer(flag, context=self.get_serializer_context()).data)


class CtcaeTermViewSet(viewsets.ReadOnlyModelViewSet):
    """CTCAE v5.0 terms; ``?search=`` matches the term, the MedDRA code or the SOC."""

    queryset = CtcaeTerm.objects.all()
    serializer_class = CtcaeTermSerializer
    permission_classes = [permissions.IsAuthenticated]
    filter_backends = [PolicyFilterBackend, SearchFilter, PolicyOrderingFilter]
    filterset_fields = ["soc", "meddra_code"]
    search_fields = ["term", "=meddra_code", "soc"]
    ordering_fields = ["id", "term"]


def register(router) -> None:
    router.register("adverse-events", AdverseEventViewSet)
    router.register("toxicity-flags", ToxicityFlagViewSet)
    router.register("ctcae-terms", CtcaeTermViewSet)
