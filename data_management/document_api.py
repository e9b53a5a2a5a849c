"""REST API of source documents (``data_management.source_documents``).

Site staff and investigators upload (multipart) and retire; monitors and data managers list
and download them for remote source data verification (with site staff and investigators);
other roles (sponsor, statistician) are refused: source documents carry direct identifiers.
Lists are scoped by trial and site and blinded (``source_documents.visible``); deletion is
not an operation (405), and the database refuses it too.
"""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.decorators import action

from edc.core import roles

from . import source_documents
from .api import ENTRY_ROLES, ID, DataManagementViewSet, _input
from .filters import SourceDocumentFilter
from .models import Query, SourceDocument
from .permissions import domain_errors, scoped
from .serializers import TARGET_FIELDS, TargetedSerializer, username

READ_ROLES = ENTRY_ROLES | {roles.MONITOR, roles.DATA_MANAGER}
TARGETS = {"subject": "subjects.subject", "visit": "visits.visit",
           "adverse_event": "adverse_events.adverseevent"}


class FileTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"


class DocumentReaders(permissions.BasePermission):
    message = "Source documents are read by site staff, investigators, monitors and data " \
              "managers only."

    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user) or roles.has_role(request.user, *READ_ROLES)


class SourceDocumentSerializer(TargetedSerializer):
    uploaded_by = username()
    download = serializers.SerializerMethodField(help_text="Where the file is downloaded")

    class Meta:
        model = SourceDocument
        fields = ["id", *TARGET_FIELDS, "query", "kind", "description", "file_name",
                  "media_type", "size", "sha256", "reveals_allocation", "uploaded_by",
                  "uploaded_at", "retired_at", "retired_reason", "download"]
        read_only_fields = fields

    def get_download(self, obj) -> str:
        return f"/api/v1/source-documents/{obj.pk}/download/"


class SourceDocumentUpload(serializers.Serializer):
    file = serializers.FileField(help_text="PDF, PNG, JPEG or TIFF (checked by content)")
    kind = serializers.ChoiceField(choices=SourceDocument.Kind.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    reveals_allocation = serializers.BooleanField(
        required=False, default=False,
        help_text="Shows the treatment (e.g. a pharmacy record): hidden from blinded users")
    subject = serializers.IntegerField(min_value=1, required=False)
    visit = serializers.IntegerField(min_value=1, required=False)
    adverse_event = serializers.IntegerField(min_value=1, required=False)
    query = serializers.IntegerField(min_value=1, required=False,
                                     help_text="The query it answers (attached to its record)")

    def validate(self, data):
        given = [name for name in (*TARGETS, "query") if data.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Attach the document to exactly one of subject, visit, adverse_event or query.")
        return data


class RetireInput(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the document is retired (entered in error)")


BINARY = {(200, media): OpenApiTypes.BINARY for media in source_documents.ALLOWED_TYPES}


class SourceDocumentViewSet(DataManagementViewSet):
    """Source documents on a subject, a visit, an adverse event or a query: upload
    (multipart), list, download, retire in error. Never deleted."""

    queryset = SourceDocument.objects.select_related("content_type", "uploaded_by")
    serializer_class = SourceDocumentSerializer
    filterset_class = SourceDocumentFilter
    ordering_fields = ["id", "uploaded_at"]
    permission_classes = [*DataManagementViewSet.permission_classes, DocumentReaders]
    action_roles = {"create": ENTRY_ROLES, "retire": ENTRY_ROLES}

    def get_queryset(self):
        return source_documents.visible(super().get_queryset(), self.request.user)

    def initial(self, request, *args, **kwargs):
        if request.method == "DELETE":  # for every role: not a permission question
            raise exceptions.MethodNotAllowed(
                "DELETE", detail="Source documents are never deleted; retire the document "
                                 "with a reason.")
        super().initial(request, *args, **kwargs)

    def _record_and_query(self, data):
        if data.get("query") is not None:
            query = get_object_or_404(scoped(Query.objects.all(), self.request.user),
                                      pk=data["query"])
            return query.record, query
        name = next(name for name in TARGETS if data.get(name) is not None)
        return self._resolve(TARGETS[name], data[name]), None

    @extend_schema(request={"multipart/form-data": SourceDocumentUpload},
                   responses={201: SourceDocumentSerializer})
    def create(self, request):
        data = _input(SourceDocumentUpload, request)
        record, query = self._record_and_query(data)
        try:
            with domain_errors():
                document = source_documents.upload(
                    record, data["file"], kind=data["kind"], user=request.user,
                    description=data["description"],
                    reveals_allocation=data["reveals_allocation"], query=query)
        except source_documents.FileTooLarge as exc:
            raise FileTooLarge(str(exc)) from exc
        return self._respond(document, status.HTTP_201_CREATED)

    @extend_schema(responses=BINARY, parameters=[ID])
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The file as uploaded (``Content-Disposition: attachment`` with its name)."""
        document = self.get_object()
        return FileResponse(document.file.open("rb"), as_attachment=True,
                            filename=document.file_name, content_type=document.media_type)

    @extend_schema(request=RetireInput, responses={200: SourceDocumentSerializer},
                   parameters=[ID])
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """Retire a document entered in error, with the reason (kept, never deleted)."""
        data = _input(RetireInput, request)
        document = source_documents.retire(self.get_object(), data["reason"], request.user)
        return self._respond(document)


def register(router) -> None:
    router.register("source-documents", SourceDocumentViewSet)
