"""django-filter filter sets of the data-management lists."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_filters import rest_framework as filters

from . import workflow as wf
from .models import Lock, ProtocolDeviation, Query, Signature, SourceDocument, Verification


class FormFilterMixin(filters.FilterSet):
    form = filters.CharFilter(method="filter_form", label="Form, as app_label.model")

    def filter_form(self, queryset, name, value):
        app_label, _, model = value.lower().partition(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model)


class QueryFilter(FormFilterMixin):
    state = filters.MultipleChoiceFilter(choices=Query.State.choices)
    unresolved = filters.BooleanFilter(method="filter_unresolved",
                                       label="Open or answered (true) / closed (false)")
    age_min = filters.NumberFilter(method="filter_age_min", label="Open for at least N days")
    age_max = filters.NumberFilter(method="filter_age_max", label="Open for at most N days")

    class Meta:
        model = Query
        fields = ["state", "origin", "check_code", "trial", "site", "subject", "visit",
                  "opened_by", "object_id", "field_name"]

    def filter_unresolved(self, queryset, name, value):
        method = queryset.filter if value else queryset.exclude
        return method(state__in=wf.UNRESOLVED_QUERY_STATES)

    def filter_age_min(self, queryset, name, value):
        return queryset.filter(opened_at__lte=timezone.now() - dt.timedelta(days=int(value)))

    def filter_age_max(self, queryset, name, value):
        return queryset.filter(opened_at__gt=timezone.now() - dt.timedelta(days=int(value) + 1))


class VerificationFilter(FormFilterMixin):
    class Meta:
        model = Verification
        fields = ["state", "trial", "site", "subject", "visit", "object_id", "field_name"]


class SignatureFilter(filters.FilterSet):
    class Meta:
        model = Signature
        fields = ["state", "level", "trial", "site", "subject", "visit", "signed_by"]


class LockFilter(FormFilterMixin):
    active = filters.BooleanFilter(method="filter_active", label="Frozen or locked (true)")

    class Meta:
        model = Lock
        fields = ["state", "level", "trial", "site", "subject", "visit", "object_id"]

    def filter_active(self, queryset, name, value):
        method = queryset.filter if value else queryset.exclude
        return method(state__in=wf.ACTIVE_LOCK_STATES)


class DeviationFilter(FormFilterMixin):
    class Meta:
        model = ProtocolDeviation
        fields = ["state", "category", "check_code", "trial", "site", "subject", "visit",
                  "object_id"]


class SourceDocumentFilter(FormFilterMixin):
    adverse_event = filters.NumberFilter(method="filter_adverse_event",
                                         label="Documents of this adverse event (id)")
    retired = filters.BooleanFilter(field_name="retired_at", lookup_expr="isnull", exclude=True,
                                    label="Retired in error (true) / current (false)")

    class Meta:
        model = SourceDocument
        fields = ["kind", "trial", "site", "subject", "visit", "query", "object_id"]

    def filter_adverse_event(self, queryset, name, value):
        return queryset.filter(content_type__app_label="adverse_events",
                               content_type__model="adverseevent", object_id=value)
