"""Randomization administration in the API, for the unblinded statistician only (403 for
every other role), registered under the trials prefix (``subjects.allocation_lists``):

* ``GET /api/v1/trials/<id>/randomization/``: the lists and their use, allocation errors;
* ``POST /api/v1/trials/<id>/randomization/extend/``: new blocks (``stratum``, ``blocks``,
  ``reason``);
* ``POST /api/v1/trials/<id>/randomization/allocation-errors/``: an allocation error and its
  correction (``subject``, ``error``, ``correction``, ``actual_arm``).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from edc.core import roles
from edc.core.api.mixins import ScopedQuerysetMixin
from trials.models import Trial

from . import allocation_lists
from .models import Subject


class StatisticianOnly(permissions.BasePermission):
    message = ("Only the unblinded statistician of this trial administers its randomization "
               "lists.")

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.STATISTICIAN)

    def has_object_permission(self, request, view, obj) -> bool:
        return roles.administers_randomization(request.user, obj)


class ExtendSerializer(serializers.Serializer):
    stratum = serializers.CharField(allow_blank=True, default="",
                                    help_text="The stratum (a site code when stratified by "
                                              "site; empty otherwise)")
    blocks = serializers.IntegerField(min_value=1, max_value=allocation_lists.MAX_BLOCKS)
    reason = serializers.CharField(help_text="Why the list is extended (audit trail)")


class AllocationErrorSerializer(serializers.Serializer):
    subject = serializers.IntegerField(min_value=1, max_value=2**62)
    error = serializers.CharField(help_text="What went wrong")
    correction = serializers.CharField(help_text="What was done about it, and why")
    actual_arm = serializers.CharField(
        allow_blank=True, default="",
        help_text="Code of the arm whose treatment the subject received, if not the one "
                  "allocated (DM ACTARM); the allocation itself stays (DM ARM)")


class RandomizationViewSet(ScopedQuerysetMixin, viewsets.GenericViewSet):
    queryset = Trial.objects.all()
    permission_classes = [StatisticianOnly]
    scope_trial = "pk"
    scope_site = None
    pagination_class = None

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def randomization(self, request, pk=None):
        """Every allocation list of the trial with its use, and the allocation errors."""
        return Response(allocation_lists.overview(self.get_object(), request.user))

    @extend_schema(request=ExtendSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="randomization/extend")
    def extend(self, request, pk=None):
        """Extend a stratum's list with new blocks from its seeded generator (audited)."""
        trial = self.get_object()
        data = ExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        added = allocation_lists.extend(trial, stratum=v["stratum"], blocks=v["blocks"],
                                        reason=v["reason"], user=request.user)
        return Response({"added": added, **allocation_lists.overview(trial, request.user)},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=AllocationErrorSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="randomization/allocation-errors")
    def allocation_errors(self, request, pk=None):
        """Record an allocation error and its correction; the allocation itself stays."""
        trial = self.get_object()
        data = AllocationErrorSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        subject = get_object_or_404(Subject.objects.filter(trial=trial), pk=v["subject"])
        record = allocation_lists.record_allocation_error(
            subject, error=v["error"], correction=v["correction"],
            actual_arm=v["actual_arm"], user=request.user)
        return Response({"id": record.pk, "subject": subject.pk,
                         "allocated_arm": subject.arm.code if subject.arm_id else None,
                         "actual_arm": record.actual_arm.code if record.actual_arm_id else None,
                         "error": record.error, "correction": record.correction},
                        status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("trials", RandomizationViewSet, basename="trial-randomization")
