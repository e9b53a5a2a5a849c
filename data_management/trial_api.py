"""The data manager's trial-wide views in the API, registered under the trials prefix:

* ``GET /api/v1/trials/<id>/status-matrix/?site=&page=``: the subject x visit status matrix
  (``data_management.matrix``);

scoped by the user's memberships (a trial the user does not reach is a 404) and blinded like
every other endpoint.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from edc.core.api.mixins import ScopedQuerysetMixin
from trials.models import Trial

from . import matrix
from .permissions import WorkflowPermission

SITE = OpenApiParameter("site", OpenApiTypes.INT, description="One site of the trial (id)")
PAGE = OpenApiParameter("page", OpenApiTypes.INT, description="Page (1-based)")


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


def register(router) -> None:
    router.register("trials", TrialDataViewSet, basename="trial-data")
