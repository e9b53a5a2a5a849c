"""Admin: read-only lists of queries, verifications, signatures, locks and protocol deviations,
and the casebook status of each subject. Changes go through the API (the services enforce the
workflow)."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from edc.core import roles
from edc.core.admin import ClinicalAdmin, ScopedRelatedFilter

from . import workflow as wf
from .document_api import READ_ROLES
from .models import (
    Casebook,
    Lock,
    ProtocolDeviation,
    Query,
    Signature,
    SourceDocument,
    Verification,
)
from .permissions import scoped
from .source_documents import visible
from .status import form_statuses

SCOPE_FILTERS = [("trial", ScopedRelatedFilter), ("site", ScopedRelatedFilter)]


class ReadOnlyAdmin(ClinicalAdmin):
    """Scoped like the API (trial-wide rows included), read-only, with the audit trail."""

    def get_queryset(self, request):
        return scoped(super(ClinicalAdmin, self).get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["audit_trail"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AgeFilter(admin.SimpleListFilter):
    title = "days open"
    parameter_name = "age"
    BUCKETS = {"0-7": (0, 7), "8-30": (8, 30), "31+": (31, None)}

    def lookups(self, request, model_admin):
        return [(key, f"{key} days") for key in self.BUCKETS]

    def queryset(self, request, queryset):
        if self.value() not in self.BUCKETS:
            return queryset
        low, high = self.BUCKETS[self.value()]
        now = timezone.now()
        queryset = queryset.filter(state__in=wf.UNRESOLVED_QUERY_STATES,
                                   opened_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            queryset = queryset.filter(opened_at__gt=now - dt.timedelta(days=high + 1))
        return queryset


@admin.register(Query)
class QueryAdmin(ReadOnlyAdmin):
    list_display = ["id", "target_label", "field_name", "subject", "site", "state", "origin",
                    "check_code", "days_open", "opened_by", "opened_at"]
    list_filter = ["state", AgeFilter, "origin", "check_code", *SCOPE_FILTERS]
    search_fields = ["text", "answer", "target_label", "subject__subject_number",
                     "subject__screening_number"]
    list_select_related = ["subject", "site", "opened_by"]

    @admin.display(description="days open")
    def days_open(self, obj) -> int:
        return obj.age_days


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "target_label", "field_name", "subject", "site", "state",
                    "verified_by", "verified_at", "cleared_at"]
    list_filter = ["state", *SCOPE_FILTERS]
    search_fields = ["target_label", "cleared_reason", "subject__subject_number"]
    list_select_related = ["subject", "site", "verified_by"]


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["id", "level", "target_label", "state", "printed_name", "signed_at",
                    "meaning", "invalidated_at"]
    list_filter = ["state", "level", *SCOPE_FILTERS]
    search_fields = ["target_label", "printed_name", "invalidated_reason"]


@admin.register(Lock)
class LockAdmin(ReadOnlyAdmin):
    list_display = ["id", "level", "target_label", "state", "reason", "changed_by",
                    "changed_at"]
    list_filter = ["state", "level", *SCOPE_FILTERS]
    search_fields = ["target_label", "reason"]
    list_select_related = ["changed_by"]


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(ReadOnlyAdmin):
    """Deviations per trial, site and subject; product names in descriptions are masked for
    users blinded to the trial (and the description is neither searched nor shown in their
    audit trail: a search by product name would tell the arms apart)."""

    list_display = ["id", "target_label", "subject", "site", "category", "state",
                    "occurred_on", "shown_description", "check_code", "query", "reported_at"]
    list_filter = ["state", "category", "check_code", *SCOPE_FILTERS]
    search_fields = ["target_label", "subject__subject_number", "subject__screening_number"]
    list_select_related = ["subject__trial", "site", "query"]
    scope_trial = "trial"
    blinded_history_fields = ("description",)

    def get_readonly_fields(self, request, obj=None):
        return [("shown_description" if name == "description" else name)
                for name in super().get_readonly_fields(request, obj)]

    def get_fields(self, request, obj=None):
        return [("shown_description" if name == "description" else name)
                for name in super().get_fields(request, obj)]

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._shown_description = masked_description(request.user)(obj)
        return obj

    def get_list_display(self, request):
        shown = masked_description(request.user)
        return [shown if name == "shown_description" else name
                for name in super().get_list_display(request)]

    @admin.display(description="description")
    def shown_description(self, obj):
        return getattr(obj, "_shown_description", "")


@admin.register(SourceDocument)
class SourceDocumentAdmin(ReadOnlyAdmin):
    """Source documents with their download link (the API's), read-only for everyone:
    uploads and retirements go through the API (``/api/v1/source-documents/``). Hidden from
    roles that do not read source documents, and allocation-revealing ones from blinded
    users, as in the API."""

    list_display = ["id", "kind", "target_label", "subject", "site", "file_name", "size",
                    "uploaded_by", "uploaded_at", "retired_at", "download"]
    list_filter = ["kind", *SCOPE_FILTERS]
    search_fields = ["target_label", "subject__subject_number", "subject__screening_number"]
    list_select_related = ["subject", "site", "uploaded_by"]
    exclude = ["file"]

    def get_queryset(self, request):
        return visible(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        return [*(name for name in super().get_readonly_fields(request, obj) if name != "file"),
                "download"]

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and (
            roles.is_admin(request.user) or roles.has_role(request.user, *READ_ROLES))

    @admin.display(description="file")
    def download(self, obj) -> str:
        return format_html('<a href="/api/v1/source-documents/{}/download/">download</a>',
                           obj.pk)


def masked_description(user):
    """The description of a deviation as ``user`` may see it (``trials.masking``)."""
    from trials.masking import text_masker

    @admin.display(description="description")
    def shown(obj):
        if obj.subject is None:
            return obj.description
        return text_masker(user, obj.subject)(obj.description)

    return shown


@admin.register(Casebook)
class CasebookAdmin(ClinicalAdmin):
    """Each subject with the count of its forms per status (entered, queried, ...)."""

    list_display = ["__str__", "site", "trial", "forms", "queried", "verified", "signed",
                    "locked"]
    list_filter = [("trial", ScopedRelatedFilter), ("site", ScopedRelatedFilter)]
    search_fields = ["screening_number", "subject_number"]
    list_select_related = ["trial", "site"]
    fields = ["trial", "site", "screening_number", "subject_number", "form_status"]
    readonly_fields = fields

    def get_changelist_instance(self, request):
        """The page's form statuses in one pass (a fixed number of queries per page)."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        statuses = casebook_statuses(rows)
        for obj in rows:
            obj._dm_rows = statuses.get(obj.pk, [])
        changelist.result_list = rows
        return changelist

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def _count(self, obj, status: str) -> int:
        cache = getattr(obj, "_dm_rows", None)
        if cache is None:
            cache = obj._dm_rows = form_statuses(obj)
        return sum(status in row["status"] for row in cache)

    @admin.display(description="forms")
    def forms(self, obj) -> int:
        return self._count(obj, "entered")

    @admin.display(description="queried")
    def queried(self, obj) -> int:
        return self._count(obj, "queried")

    @admin.display(description="verified")
    def verified(self, obj) -> int:
        return self._count(obj, "verified")

    @admin.display(description="signed")
    def signed(self, obj) -> int:
        return self._count(obj, "signed")

    @admin.display(description="frozen/locked")
    def locked(self, obj) -> int:
        return self._count(obj, "locked") + self._count(obj, "frozen")

    @admin.display(description="form status")
    def form_status(self, obj) -> str:
        return "; ".join(f"{row['form']} #{row['object_id']}: {', '.join(row['status'])}"
                         for row in form_statuses(obj))


def casebook_statuses(subjects) -> dict[int, list[dict]]:
    """``{subject id: [{"status": [...]}, ...]}`` for many subjects: one query per CRF model
    plus the data-management index, however many subjects (see ``status.form_statuses``)."""
    from django.contrib.contenttypes.models import ContentType

    from .status import record_status, status_index
    from .targets import crf_models, paths

    if not subjects:
        return {}
    ids = [s.pk for s in subjects]
    trial_of = {s.pk: s.trial_id for s in subjects}
    ix = status_index(ids, set(trial_of.values()))
    out: dict[int, list[dict]] = {pk: [] for pk in ids}
    for model in crf_models():
        ct = ContentType.objects.get_for_model(model)
        p = paths(model)
        subject_path = "pk" if p.subject == "pk" else p.subject
        rows = model.objects.filter(**{f"{subject_path}__in": ids}).values_list(
            "pk", subject_path, p.visit or "pk")
        for pk, subject_id, visit_id in rows:
            visit_id = visit_id if p.visit else None
            out[subject_id].append({"status": record_status(
                ix, ct.pk, pk, subject_id, visit_id, trial_of[subject_id])})
    return out
