"""REST API for queries, source data verification, signatures, locks and form status.

Every list is scoped by ``edc.core.roles.scope`` through the stored trial and site, filtered with
django-filter and cursor-paginated; workflow refusals are 409 (state of the data) or 403
(the user), in the project's error shape (``edc.core.api.errors``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.concurrency import VersionedMixin
from edc.core.api.mixins import HISTORY_SCHEMA
from edc.core.audit import history

from . import deviations, edit_checks, locks, queries, sdv, signatures
from .filters import (
    DeviationFilter,
    LockFilter,
    QueryFilter,
    SignatureFilter,
    VerificationFilter,
)
from .models import Lock, ProtocolDeviation, Query, Signature, Verification
from .permissions import WorkflowPermission, domain_errors, record_scope, scoped
from .serializers import (
    DeviationCreateSerializer,
    DeviationSerializer,
    LockInput,
    LockSerializer,
    QueryActionSerializer,
    QueryCreateSerializer,
    QuerySerializer,
    ReasonInput,
    ResolutionInput,
    RunEditChecksSerializer,
    SignatureSerializer,
    SignInput,
    TargetInput,
    VerificationSerializer,
)
from .status import form_status, form_statuses
from .targets import resolve

QUERY_ROLES = {roles.MONITOR, roles.DATA_MANAGER}
ENTRY_ROLES = {roles.SITE_STAFF, roles.INVESTIGATOR}
ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _input(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class DataManagementViewSet(VersionedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                            viewsets.GenericViewSet):
    permission_classes = [WorkflowPermission]
    action_roles: dict[str, set[str]] = {}
    ordering_fields = ["id"]

    def get_queryset(self):
        return scoped(super().get_queryset(), self.request.user)

    def _resolve(self, label, object_id):
        return resolve(label, object_id, record_scope(self.request.user))

    def _respond(self, obj, code=status.HTTP_200_OK):
        return Response(self.get_serializer(obj).data, status=code)

    @extend_schema(**HISTORY_SCHEMA)
    @action(detail=True, methods=["get"], pagination_class=None)
    def history(self, request, *args, **kwargs):
        return Response(history(self.get_object()))


class QueryViewSet(DataManagementViewSet):
    """Queries on a record or a field: opened by monitors / data managers (or edit checks),
    answered by site staff, closed or re-opened by their opener."""

    queryset = Query.objects.select_related(
        "content_type", "opened_by", "answered_by", "closed_by").prefetch_related(
        "messages__author")
    serializer_class = QuerySerializer
    filterset_class = QueryFilter
    ordering_fields = ["id", "opened_at"]
    action_roles = {"create": QUERY_ROLES, "answer": ENTRY_ROLES, "close": QUERY_ROLES,
                    "reopen": QUERY_ROLES, "run_edit_checks": QUERY_ROLES}

    @extend_schema(request=QueryCreateSerializer, responses={201: QuerySerializer})
    def create(self, request):
        data = _input(QueryCreateSerializer, request)
        record = self._resolve(data["form"], data["object_id"])
        with domain_errors():
            query = queries.open_query(record, data["text"], request.user, data["field_name"])
        return self._respond(query, status.HTTP_201_CREATED)

    def _act(self, request, service, *, correction: bool = False):
        data = _input(QueryActionSerializer, request)
        query = self.get_object()
        if "value" in data and not correction:
            raise ValidationError({"value": "A value is corrected only when answering."})
        kwargs = {"value": data["value"]} if "value" in data else {}
        with domain_errors():
            query = service(query, user=request.user, text=data["text"], **kwargs)
        return self._respond(Query.objects.prefetch_related("messages").get(pk=query.pk))

    @extend_schema(request=QueryActionSerializer, responses={200: QuerySerializer},
                   parameters=[ID])
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        return self._act(request, queries.answer_query, correction=True)

    @extend_schema(request=QueryActionSerializer, responses={200: QuerySerializer},
                   parameters=[ID])
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        return self._act(request, queries.close_query)

    @extend_schema(request=QueryActionSerializer, responses={200: QuerySerializer},
                   parameters=[ID])
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._act(request, queries.reopen_query)

    @extend_schema(request=RunEditChecksSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="run-edit-checks")
    def run_edit_checks(self, request):
        """Run the edit checks on one subject; returns the ids of the queries opened."""
        from subjects.models import Subject

        data = _input(RunEditChecksSerializer, request)
        subject = get_object_or_404(roles.scope(Subject.objects.all(), request.user),
                                    pk=data["subject"])
        opened = edit_checks.run_edit_checks(subject)
        return Response({"subject": subject.pk, "opened": [q.pk for q in opened]})


class VerificationViewSet(DataManagementViewSet):
    """Source data verification of a record (``field_name`` empty) or one field."""

    queryset = Verification.objects.select_related("content_type", "verified_by",
                                                   "cleared_by")
    serializer_class = VerificationSerializer
    filterset_class = VerificationFilter
    action_roles = {"create": {roles.MONITOR}}

    @extend_schema(request=TargetInput,
                   responses={201: VerificationSerializer})
    def create(self, request):
        data = _input(TargetInput, request)
        record = self._resolve(data["form"], data["object_id"])
        with domain_errors():
            verification = sdv.verify(record, request.user, data["field_name"])
        return self._respond(verification, status.HTTP_201_CREATED)


class SignatureViewSet(DataManagementViewSet):
    """Investigator signatures of a casebook (subject) or a visit, with the password."""

    queryset = Signature.objects.select_related("content_type", "signed_by",
                                                "invalidated_by")
    serializer_class = SignatureSerializer
    filterset_class = SignatureFilter
    action_roles = {"create": {roles.INVESTIGATOR}}
    admin_may_write = False

    @extend_schema(request=SignInput, responses={201: SignatureSerializer})
    def create(self, request):
        data = _input(SignInput, request)
        label = {"subject": "subjects.subject", "visit": "visits.visit"}[data["level"]]
        record = self._resolve(label, data["object_id"])
        with domain_errors():
            signature = signatures.sign(request.user, record, data["password"],
                                        data["meaning"], request=request)
        return self._respond(signature, status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("level", OpenApiTypes.STR)],
                   responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def meaning(self, request):
        """The meaning of a signature, to show before the investigator signs (11.50)."""
        level = request.query_params.get("level", "subject")
        if level not in signatures.MEANINGS:
            raise ValidationError({"level": "Use subject or visit."})
        return Response({"level": level, "meaning": signatures.MEANINGS[level],
                         "statement": "Re-entering your password signs the data "
                                      "electronically; your printed name, the date and time "
                                      "(UTC) and this meaning are stored with it."})


class LockViewSet(DataManagementViewSet):
    """Freezes and locks of a form, a visit, a subject or a trial (database lock)."""

    queryset = Lock.objects.select_related("content_type", "changed_by")
    serializer_class = LockSerializer
    filterset_class = LockFilter
    action_roles = {"create": {roles.DATA_MANAGER}, "unlock": {roles.DATA_MANAGER}}

    def _target(self, data):
        from trials.models import Trial

        level = data["level"]
        if level == "trial":
            return get_object_or_404(
                roles.scope(Trial.objects.all(), self.request.user, trial="pk", site=None),
                pk=data["object_id"])
        if level == "form" and not data.get("form"):
            raise ValidationError({"form": "A form lock names its form (app_label.model)."})
        label = data.get("form") if level == "form" else {
            "visit": "visits.visit", "subject": "subjects.subject"}[level]
        return self._resolve(label, data["object_id"])

    @extend_schema(request=LockInput, responses={200: LockSerializer, 201: LockSerializer})
    def create(self, request):
        """Freeze or lock a target (201 for a new lock, 200 for a transition)."""
        data = _input(LockInput, request)
        record = self._target(data)
        with domain_errors():
            lock, created = locks.change_lock(request.user, data["level"], record,
                                              data["action"], data["reason"])
        return self._respond(lock, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=ReasonInput, responses={200: LockSerializer}, parameters=[ID])
    @action(detail=True, methods=["post"])
    def unlock(self, request, pk=None):
        lock = self.get_object()
        reason = (request.data.get("reason") or "") if isinstance(request.data, dict) else ""
        if not reason.strip():
            raise ValidationError({"reason": "A reason is required to unlock data."})
        record = lock.record
        with domain_errors():
            lock, _ = locks.change_lock(request.user, lock.level, record, "unlock", reason)
        return self._respond(lock)


class FormStatusViewSet(viewsets.ViewSet):
    """Status of forms at a glance: ``?subject=<id>`` (every form of the casebook) or
    ``?form=<app_label.model>&object_id=<id>`` (one record)."""

    permission_classes = [WorkflowPermission]

    @extend_schema(parameters=[OpenApiParameter("subject", OpenApiTypes.INT),
                               OpenApiParameter("form", OpenApiTypes.STR),
                               OpenApiParameter("object_id", OpenApiTypes.INT)],
                   responses={200: OpenApiTypes.OBJECT})
    def list(self, request):
        from subjects.models import Subject

        params = request.query_params
        if params.get("subject"):
            if not params["subject"].isdigit():
                raise ValidationError({"subject": "A subject id is a number."})
            subject = get_object_or_404(roles.scope(Subject.objects.all(), request.user),
                                        pk=params["subject"])
            return Response({"subject": subject.pk, "forms": form_statuses(subject)})
        if params.get("form") and params.get("object_id"):
            record = resolve(params["form"], params["object_id"], record_scope(request.user))
            return Response({"form": params["form"].lower(), "object_id": record.pk,
                             "status": form_status(record)})
        raise ValidationError({"subject": "Give ?subject=<id>, or ?form=<app_label.model>"
                                          "&object_id=<id>."})


class DeviationViewSet(DataManagementViewSet):
    """Protocol deviations per subject, trial or record (never deleted): raised by the dose
    checks with a query for the monitor, or reported by a user (eligibility waiver, missed
    assessment, out-of-window visit...); resolved with a reason."""

    queryset = ProtocolDeviation.objects.select_related(
        "content_type", "reported_by", "resolved_by", "subject__trial")
    serializer_class = DeviationSerializer
    filterset_class = DeviationFilter
    ordering_fields = ["id", "occurred_on"]
    action_roles = {"create": QUERY_ROLES | ENTRY_ROLES, "resolve": QUERY_ROLES}

    @extend_schema(request=DeviationCreateSerializer, responses={201: DeviationSerializer})
    def create(self, request):
        data = _input(DeviationCreateSerializer, request)
        record = self._resolve(data["form"], data["object_id"])
        with domain_errors():
            deviation = deviations.report_deviation(
                record, data["category"], data["description"], request.user,
                data.get("occurred_on"))
        return self._respond(deviation, status.HTTP_201_CREATED)

    @extend_schema(request=ResolutionInput, responses={200: DeviationSerializer},
                   parameters=[ID])
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = _input(ResolutionInput, request)
        with domain_errors():
            deviation = deviations.resolve(self.get_object(), data["resolution"], request.user)
        return self._respond(deviation)


def register(router) -> None:
    router.register("queries", QueryViewSet)
    router.register("deviations", DeviationViewSet)
    router.register("verifications", VerificationViewSet)
    router.register("signatures", SignatureViewSet)
    router.register("locks", LockViewSet)
    router.register("form-status", FormStatusViewSet, basename="form-status")
