"""The data manager's trial-wide views in the API, registered under the trials prefix:

* ``GET /api/v1/trials/<id>/status-matrix/?site=&page=``: the subject x visit status matrix
  (``data_management.matrix``);
* ``GET /api/v1/trials/<id>/audit-trail/?user=&subject=&record_type=&site=&date_from=
  &date_to=&reason=&page=``: the trial-wide audit trail (``data_management.audit_trail``),
  and ``audit-trail/export/`` with the same filters as CSV;

scoped by the user's memberships (a trial the user does not reach is a 404) and blinded like
every other endpoint.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from edc.core.api.mixins import ScopedQuerysetMixin
from trials.models import Trial

from . import audit_trail, matrix
from .csv_stream import csv_response
from .permissions import WorkflowPermission

SITE = OpenApiParameter("site", OpenApiTypes.INT, description="One site of the trial (id)")
PAGE = OpenApiParameter("page", OpenApiTypes.INT, description="Page (1-based)")
AUDIT_FILTERS = [
    OpenApiParameter("user", OpenApiTypes.STR, description="Who made the change (id or "
                                                            "username)"),
    OpenApiParameter("subject", OpenApiTypes.INT, description="Records of one subject (id)"),
    OpenApiParameter("record_type", OpenApiTypes.STR,
                     description="Records of one type, as app_label.model "
                                 "(e.g. visits.exposure)"),
    SITE,
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this day (UTC)"),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Up to this day (UTC)"),
    OpenApiParameter("reason", OpenApiTypes.STR, description="Reason for change contains"),
]


def page_number(request) -> int:
    value = request.query_params.get("page") or "1"
    if not value.isdigit() or len(value) > 9:
        raise ValidationError({"page": "A page is a positive number."})
    return int(value)


class TrialDataViewSet(ScopedQuerysetMixin, viewsets.GenericViewSet):
    queryset = Trial.objects.all()
    permission_classes = [WorkflowPermission]
    scope_trial = "pk"
    scope_site = None
    pagination_class = None

    @extend_schema(parameters=[SITE, PAGE], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="status-matrix")
    def status_matrix(self, request, pk=None):
        """Every subject x visit with the status of each form (due, missing, entered,
        queried, verified, signed, frozen/locked), 100 subjects per page."""
        trial = self.get_object()
        site = matrix.site_of(trial, request.user, request.query_params.get("site"))
        return Response(matrix.status_matrix(trial, request.user, site=site,
                                             page=page_number(request)))

    @extend_schema(parameters=[*AUDIT_FILTERS, PAGE], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="audit-trail")
    def audit_trail(self, request, pk=None):
        """Every audit event of the trial's records you may read, newest first (100 a page):
        who, when (UTC), the reason for change and each changed value (old, new)."""
        trial = self.get_object()
        filters = audit_trail.parse_filters(request.query_params, request.user, trial)
        return Response(audit_trail.page(trial, request.user, filters, page_number(request)))

    @extend_schema(parameters=AUDIT_FILTERS,
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="audit-trail/export")
    def audit_trail_export(self, request, pk=None) -> StreamingHttpResponse:
        """The same events as CSV, oldest first, one line per changed value (streamed)."""
        trial = self.get_object()
        filters = audit_trail.parse_filters(request.query_params, request.user, trial)
        return csv_response(audit_trail.csv_lines(trial, request.user, filters),
                            f"audit-trail-{trial.registry_id}.csv")


def register(router) -> None:
    router.register("trials", TrialDataViewSet, basename="trial-data")
