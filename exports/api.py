"""REST API for sponsor safety exports (``/api/v1/exports/...``).

Streamed (one request, constant memory, refused with 409 above ``EXPORT_SYNC_MAX_ROWS``):

* ``GET exports/ae-listing/?trial=&site=&date_from=&date_to=&output=csv|xlsx``: AE listing;
* ``GET exports/sdtm/{domain}/?trial=...&output=csv|json|ndjson|xpt``: SDTMIG 3.4 domains
  (DM, AE, SUPPAE, EX, QS, SV, DS, IE, DV, TU, TR, RS, TS, TE, TA, TV, TI) and ADaM ADQS /
  ADTTE as CSV, CDISC Dataset-JSON 1.1 or SAS XPORT v5 (``GET exports/sdtm/`` lists the
  domains and variables);
* ``GET exports/documents/define-xml/`` and ``.../odm/``: Define-XML 2.1 of every dataset;
  ODM 1.3.2 of the whole trial with its audit trail (a transactional file);
* ``GET exports/summaries/ae-incidence/`` and ``GET exports/summaries/dlt/``
  (``output=json|csv``): AE incidence by arm x SOC x term x worst grade; DLT/TI by dose
  level and cohort.

Background (Celery, queued through the outbox; progress and a download link):

* ``POST exports/records/`` ``{dataset, format, trial, site?, date_from?, date_to?}`` -> 202;
* ``POST exports/casebooks/`` ``{subject}`` or ``{site}`` -> 202: a casebook PDF
  (``exports.casebook``), polled and downloaded as the other background exports;
* ``GET exports/records/`` / ``{id}/``: the user's exports (admins: all) with state,
  progress, row count, SHA-256; ``GET exports/records/{id}/download/``: the file (requester or
  admin, scope re-checked), each download recorded.

Who may export, which rows and which labels: see ``exports.services`` (sponsor, data manager,
monitor, investigator and admin; site staff are refused; site-level memberships get their
sites' rows only; blinded users get neutral labels). Date filters apply to the AE onset date
(AE, SUPPAE, listing, summaries), the administration date (EX), the completion date (QS) and
the consent date (DM), inclusive.
"""

from __future__ import annotations

import base64

from django.db import transaction
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.errors import Conflict
from edc.core.outbox import enqueue

from . import catalogue, documents, domains, engine, services, terminology
from .models import FORMATS, Dataset, ExportDownload, ExportRecord, Format

MAX_ID = 2**63 - 1
CSV, XLSX = "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON = "application/json"


class UnmappedTermError(serializers.ValidationError):
    """A value outside its CDISC codelist: the export is refused (422), naming the variable
    and the value (``exports.terminology``)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "A value is not in its controlled terminology."
    default_code = "unmapped_term"


class ExportPermission(permissions.BasePermission):
    message = ("Your role may not export data (sponsor, data manager, monitor, investigator "
               "or admin only).")

    def has_permission(self, request, view) -> bool:
        return services.can_export(request.user)


class ExportQuerySerializer(serializers.Serializer):
    trial = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Trial id")
    site = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                    help_text="Only this site (within your scope)")
    date_from = serializers.DateField(required=False, help_text="From this date (inclusive)")
    date_to = serializers.DateField(required=False, help_text="Up to this date (inclusive)")

    def validate(self, attrs):
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError({"date_to": "date_to is before date_from."})
        return attrs


class ListingQuerySerializer(ExportQuerySerializer):
    output = serializers.ChoiceField(choices=["csv", "xlsx"], default="csv")


class SdtmQuerySerializer(ExportQuerySerializer):
    output = serializers.ChoiceField(
        choices=["csv", "json", "ndjson", "xpt"], default="csv",
        help_text="csv; json / ndjson for CDISC Dataset-JSON 1.1; xpt for SAS XPORT v5")


class SummaryQuerySerializer(ExportQuerySerializer):
    output = serializers.ChoiceField(choices=["json", "csv"], default="json")


class ExportRecordSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="trial.registry_id", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    site_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    progress = serializers.FloatField(read_only=True, allow_null=True,
                                      help_text="0..1 (rows written / rows to write)")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportRecord
        fields = ["id", "uid", "dataset", "format", "mode", "state", "study_id", "trial",
                  "site", "subject", "date_from", "date_to", "site_ids", "unblinded", "birth_dates",
                  "rows_total", "row_count", "progress", "sha256", "size_bytes", "error",
                  "requested_by", "created_at", "started_at", "finished_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, record) -> str | None:
        if record.mode != ExportRecord.Mode.BACKGROUND or record.state != ExportRecord.State.DONE:
            return None
        url = reverse("export-record-download", args=[record.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ExportJobSerializer(ExportQuerySerializer):
    dataset = serializers.ChoiceField(choices=[(d, Dataset(d).label) for d in FORMATS])
    format = serializers.ChoiceField(choices=Format.choices)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["format"] not in FORMATS[attrs["dataset"]]:
            raise serializers.ValidationError({"format": (
                f"{attrs['dataset']} is offered as {', '.join(FORMATS[attrs['dataset']])}.")})
        return attrs


def _scope(request, query: dict):
    try:
        return services.scope_for(request.user, query["trial"], query.get("site"))
    except services.OutOfScope as exc:
        raise NotFound(f"No such {exc} within your trials and sites.") from None


def _disposition(name: str) -> str:
    return f'attachment; filename="{name}"'


def _stream(request, dataset: str, query_class) -> StreamingHttpResponse:
    query = query_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    trial, site_ids, site = _scope(request, q)
    spec = services.make_spec(request.user, trial, site_ids, dataset, q["output"],
                              q.get("date_from"), q.get("date_to"))
    record = services.create_record(request.user, spec, ExportRecord.Mode.STREAM, site)
    try:
        source = services.open_source(spec)
        source.prime()
    except terminology.UnmappedTerm as exc:
        services.update_record(record.pk, "export stopped: unmapped controlled term",
                               state=ExportRecord.State.FAILED, error=str(exc))
        raise UnmappedTermError({exc.variable: [str(exc)]}, code="unmapped_term") from None
    except Exception as exc:
        services.update_record(record.pk, "export failed", state=ExportRecord.State.FAILED,
                               error=repr(exc)[:2000])
        raise
    limit = services.sync_max_rows(spec.fmt)
    if source.total > limit:
        source.close()
        services.update_record(record.pk, "export refused: too large to stream",
                               state=ExportRecord.State.REFUSED, rows_total=source.total)
        raise Conflict(f"{source.total} rows is more than {limit} to stream: request it as a "
                       "background export (POST /api/v1/exports/records/).", code="too_large")
    services.update_record(record.pk, "export started", rows_total=source.total)
    response = StreamingHttpResponse(services.stream(record, source),
                                     content_type=engine.content_type(spec.fmt))
    response["Content-Disposition"] = _disposition(
        engine.file_name(trial.registry_id, dataset, spec.fmt))
    response["X-Export-Record"] = str(record.pk)
    return response


ROW_RESPONSES = {(200, CSV): OpenApiTypes.BINARY}
DATASET_JSON_DOC = {
    "type": "object",
    "description": "CDISC Dataset-JSON v1.1 document",
    "required": ["datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID",
                 "records", "name", "label", "columns"],
    "properties": {
        "datasetJSONCreationDateTime": {"type": "string"},
        "datasetJSONVersion": {"type": "string"},
        "fileOID": {"type": "string"},
        "dbLastModifiedDateTime": {"type": "string"},
        "originator": {"type": "string"},
        "sourceSystem": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}}},
        "studyOID": {"type": "string"},
        "metaDataVersionOID": {"type": "string"},
        "itemGroupOID": {"type": "string"},
        "records": {"type": "integer", "minimum": 0},
        "name": {"type": "string"},
        "label": {"type": "string"},
        "columns": {"type": "array", "items": {
            "type": "object", "required": ["itemOID", "name", "label", "dataType"],
            "properties": {"itemOID": {"type": "string"}, "name": {"type": "string"},
                           "label": {"type": "string"}, "dataType": {"type": "string"},
                           "targetDataType": {"type": "string"},
                           "length": {"type": "integer"},
                           "keySequence": {"type": "integer"}}}},
        "rows": {"type": "array", "items": {"type": "array", "items": {}}},
    },
}


class AeListingViewSet(viewsets.ViewSet):
    """AE listing for sponsors: one row per AE (CSV or XLSX), streamed."""

    permission_classes = [ExportPermission]

    @extend_schema(
        parameters=[ListingQuerySerializer],
        responses={(200, CSV): OpenApiTypes.BINARY, (200, XLSX): OpenApiTypes.BINARY},
        description="One row per adverse event: subject (USUBJID), arm (neutral label when "
                    "blinded), dose level, CTCAE v5.0 term, SOC, MedDRA code, worst grade, "
                    "onset/resolution, seriousness criteria, attribution, action, outcome, "
                    "effective DLT/TI. Date range on onset.",
    )
    def list(self, request):
        return _stream(request, Dataset.AE_LISTING, ListingQuerySerializer)


DOMAIN_PARAMETER = OpenApiParameter("domain", OpenApiTypes.STR, OpenApiParameter.PATH,
                                    enum=list(catalogue.DOMAIN_DATASETS))
DOMAINS_RESPONSE = inline_serializer("SdtmDomain", many=True, fields={
    "domain": serializers.CharField(), "label": serializers.CharField(),
    "variables": inline_serializer("SdtmVariable", fields={
        "name": serializers.CharField(), "label": serializers.CharField(),
        "dataType": serializers.CharField()}, many=True),
})


class SdtmViewSet(viewsets.ViewSet):
    """CDISC SDTMIG 3.4 domains (special purpose, interventions, events, findings, oncology
    and trial design) and the ADaM datasets, one URL each (``catalogue.DOMAIN_DATASETS``)."""

    permission_classes = [ExportPermission]
    lookup_field = "domain"

    @extend_schema(responses={200: DOMAINS_RESPONSE},
                   description="The SDTM domains offered and their variables.")
    def list(self, request):
        return Response([
            {"domain": domain, "label": label, "variables": [
                {"name": v.name, "label": v.label, "dataType": v.data_type}
                for v in variables]}
            for domain, (label, variables) in domains.ALL_DOMAINS.items()])

    @extend_schema(
        parameters=[DOMAIN_PARAMETER, SdtmQuerySerializer],
        responses={(200, CSV): OpenApiTypes.BINARY,
                   (200, JSON): OpenApiResponse(response=DATASET_JSON_DOC,
                                                description="CDISC Dataset-JSON 1.1")},
        description="An SDTM domain as CSV (SDTM variable names, ISO 8601 dates) or as "
                    "Dataset-JSON 1.1, streamed. DM has no BRTHDTC for sponsors.",
    )
    def retrieve(self, request, domain=None):
        dataset = catalogue.DOMAIN_DATASETS.get((domain or "").lower())
        if dataset is None:
            offered = ", ".join(catalogue.DOMAIN_DATASETS)
            raise NotFound(f"No SDTM domain {domain!r}; offered: {offered}.")
        return _stream(request, dataset, SdtmQuerySerializer)


INCIDENCE_ROWS = inline_serializer("AeIncidenceRow", many=True, fields={
    "arm": serializers.CharField(allow_null=True), "soc": serializers.CharField(),
    "term": serializers.CharField(), "meddra_code": serializers.CharField(),
    "worst_grade": serializers.IntegerField(allow_null=True),
    "subjects": serializers.IntegerField(), "events": serializers.IntegerField(),
    "arm_subjects": serializers.IntegerField(),
    "percent": serializers.FloatField(allow_null=True)})
DLT_ROWS = inline_serializer("DltSummaryRow", many=True, fields={
    "dose_level": serializers.CharField(allow_null=True),
    "cohort": serializers.IntegerField(allow_null=True),
    "subjects": serializers.IntegerField(), "subjects_with_dlt": serializers.IntegerField(),
    "dlt_events": serializers.IntegerField(), "subjects_with_ti": serializers.IntegerField(),
    "ti_events": serializers.IntegerField()})


def _table(name: str, rows) -> serializers.Serializer:
    return inline_serializer(name, fields={
        "dataset": serializers.CharField(), "study_id": serializers.CharField(),
        "generated_at": serializers.DateTimeField(), "unblinded": serializers.BooleanField(),
        "site_ids": serializers.ListField(child=serializers.IntegerField()),
        "date_from": serializers.DateField(allow_null=True),
        "date_to": serializers.DateField(allow_null=True),
        "columns": serializers.ListField(child=serializers.CharField()),
        "rows": rows})


class DocumentQuerySerializer(serializers.Serializer):
    trial = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Trial id")
    site = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                    help_text="Only this site (within your scope; ODM)")


class DocumentViewSet(viewsets.ViewSet):
    """Define-XML 2.1 (metadata of every dataset) and ODM 1.3.2 (the whole trial), streamed."""

    permission_classes = [ExportPermission]

    def _document(self, request, dataset: str) -> StreamingHttpResponse:
        query = DocumentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        trial, site_ids, site = _scope(request, query.validated_data)
        spec = services.make_spec(request.user, trial, site_ids, dataset, Format.XML)
        record = services.create_record(request.user, spec, ExportRecord.Mode.STREAM, site)
        chunks = documents.DOCUMENTS[dataset](spec, trial)
        response = StreamingHttpResponse(services.stream_document(record, chunks),
                                         content_type=engine.content_type(Format.XML))
        response["Content-Disposition"] = _disposition(
            f"{trial.registry_id}_{'define' if dataset == Dataset.DEFINE_XML else 'odm'}.xml")
        response["X-Export-Record"] = str(record.pk)
        return response

    @extend_schema(parameters=[DocumentQuerySerializer],
                   responses={(200, "application/xml"): OpenApiTypes.BINARY},
                   description="Define-XML 2.1 describing every exported dataset.")
    @action(detail=False, methods=["get"], url_path="define-xml")
    def define_xml(self, request):
        return self._document(request, Dataset.DEFINE_XML)

    @extend_schema(parameters=[DocumentQuerySerializer],
                   responses={(200, "application/xml"): OpenApiTypes.BINARY},
                   description="CDISC ODM 1.3.2 of the whole trial (metadata, and clinical "
                               "data per subject, visit and form as a transactional file: "
                               "every version from the audit trail with its AuditRecord), "
                               "streamed.")
    @action(detail=False, methods=["get"], url_path="odm")
    def odm(self, request):
        return self._document(request, Dataset.ODM)


class CatalogueViewSet(viewsets.ViewSet):
    """Every dataset x format of a trial, scoped and blinded as the exports themselves."""

    permission_classes = [ExportPermission]

    @extend_schema(parameters=[DocumentQuerySerializer],
                   responses={200: OpenApiTypes.OBJECT},
                   description="The export catalogue of a trial: each dataset, its formats "
                               "and the URL streaming each (or POST exports/records/ for a "
                               "background file); whether true arms and birth dates show.")
    def list(self, request):
        query = DocumentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        trial, site_ids, _ = _scope(request, query.validated_data)
        return Response(catalogue.catalogue(request.user, trial, site_ids))


class SummaryViewSet(viewsets.ViewSet):
    """Safety summary tables (small; computed in the database)."""

    permission_classes = [ExportPermission]

    def _summary(self, request, dataset: str) -> HttpResponse:
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        trial, site_ids, site = _scope(request, q)
        spec = services.make_spec(request.user, trial, site_ids, dataset, q["output"],
                                  q.get("date_from"), q.get("date_to"))
        record = services.create_record(request.user, spec, ExportRecord.Mode.STREAM, site)
        try:
            data, rows = services.summary(spec, trial)
        except Exception as exc:
            services.update_record(record.pk, "export failed", state=ExportRecord.State.FAILED,
                                   error=repr(exc)[:2000])
            raise
        services.finish_summary(record, data, rows)
        response = HttpResponse(data, content_type=engine.content_type(spec.fmt))
        if spec.fmt == Format.CSV:
            response["Content-Disposition"] = _disposition(
                engine.file_name(trial.registry_id, dataset, spec.fmt))
        response["X-Export-Record"] = str(record.pk)
        return response

    @extend_schema(parameters=[SummaryQuerySerializer],
                   responses={(200, JSON): _table("AeIncidenceTable", INCIDENCE_ROWS),
                              (200, CSV): OpenApiTypes.BINARY},
                   description="Subjects per arm x SOC x CTCAE term x worst grade (each "
                               "subject once per term, at its worst grade), with the arm's N "
                               "and percentage.")
    @action(detail=False, methods=["get"], url_path="ae-incidence")
    def ae_incidence(self, request):
        return self._summary(request, Dataset.AE_INCIDENCE)

    @extend_schema(parameters=[SummaryQuerySerializer],
                   responses={(200, JSON): _table("DltSummaryTable", DLT_ROWS),
                              (200, CSV): OpenApiTypes.BINARY},
                   description="Subjects, subjects with an effective DLT / TI and flagged AEs "
                               "per dose level and cohort.")
    @action(detail=False, methods=["get"], url_path="dlt")
    def dlt(self, request):
        return self._summary(request, Dataset.DLT_SUMMARY)


class ExportRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Who exported what, when (your own exports; admins see all), and background exports."""

    queryset = ExportRecord.objects.select_related("requested_by", "trial")
    serializer_class = ExportRecordSerializer
    permission_classes = [ExportPermission]
    filterset_fields = ["dataset", "format", "state", "mode", "trial"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if roles.is_admin(self.request.user):
            return queryset
        return queryset.filter(requested_by=self.request.user)

    @extend_schema(request=ExportJobSerializer, responses={202: ExportRecordSerializer},
                   description="Queue a background export (Celery); poll the record for "
                               "progress, then follow download_url.")
    def create(self, request, *args, **kwargs):
        job = ExportJobSerializer(data=request.data)
        job.is_valid(raise_exception=True)
        j = job.validated_data
        trial, site_ids, site = _scope(request, j)
        spec = services.make_spec(request.user, trial, site_ids, j["dataset"], j["format"],
                                  j.get("date_from"), j.get("date_to"))
        with transaction.atomic():
            record = services.create_record(request.user, spec, ExportRecord.Mode.BACKGROUND,
                                            site)
            enqueue("exports.tasks.run_export", record.pk)
        record = self.get_queryset().get(pk=record.pk)
        body = ExportRecordSerializer(record, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": reverse("export-record-detail", args=[record.pk])})

    @extend_schema(
        responses={(200, CSV): OpenApiTypes.BINARY, (200, JSON): OpenApiTypes.BINARY,
                   (200, XLSX): OpenApiTypes.BINARY},
        description="The file of a finished background export (409 while it runs). Only "
                    "its requester (or an admin) whose scope still covers it; recorded.")
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        record = self.get_object()
        if not services.may_download(request.user, record):
            raise PermissionDenied("Your access no longer covers this export.")
        if record.mode != ExportRecord.Mode.BACKGROUND or record.state != ExportRecord.State.DONE:
            raise Conflict(f"This export is {record.state}, not a finished background export.",
                           code="not_ready")
        path = services.file_path(record)
        if not path.is_file():
            raise NotFound("The export file is no longer available.")
        ExportDownload.objects.create(export=record, user=request.user)
        response = FileResponse(path.open("rb"), as_attachment=True,
                                filename=services.download_name(record),
                                content_type=engine.content_type(record.format))
        digest = base64.b64encode(bytes.fromhex(record.sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"  # RFC 9530
        return response


class CasebookRequestSerializer(serializers.Serializer):
    subject = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                       help_text="A subject's casebook")
    site = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                    help_text="Every subject of a site (within your scope)")

    def validate(self, attrs):
        if ("subject" in attrs) == ("site" in attrs):
            raise serializers.ValidationError("Name either a subject or a site.")
        return attrs


class CasebookViewSet(viewsets.ViewSet):
    """Casebook PDFs (``exports.casebook``), produced in the background like any export."""

    permission_classes = [ExportPermission]

    @extend_schema(request=CasebookRequestSerializer, responses={202: ExportRecordSerializer},
                   description="Queue the casebook PDF of a subject or of a site: every form "
                               "by visit with its status, the signatures and the audit trail, "
                               "the subject id on every page; scoped and blinded as you read "
                               "the data. Poll exports/records/{id}/, then follow "
                               "download_url.")
    def create(self, request):
        query = CasebookRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        try:
            record = services.request_casebook(request.user, subject_id=q.get("subject"),
                                               site_id=q.get("site"))
        except services.OutOfScope as exc:
            raise NotFound(f"No such {exc} within your trials and sites.") from None
        record = ExportRecord.objects.select_related("requested_by", "trial").get(pk=record.pk)
        body = ExportRecordSerializer(record, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": reverse("export-record-detail", args=[record.pk])})


def register(router) -> None:
    router.register("exports/ae-listing", AeListingViewSet, basename="export-ae-listing")
    router.register("exports/sdtm", SdtmViewSet, basename="export-sdtm")
    router.register("exports/summaries", SummaryViewSet, basename="export-summary")
    router.register("exports/documents", DocumentViewSet, basename="export-document")
    router.register("exports/catalogue", CatalogueViewSet, basename="export-catalogue")
    router.register("exports/records", ExportRecordViewSet, basename="export-record")
    router.register("exports/casebooks", CasebookViewSet, basename="export-casebook")
