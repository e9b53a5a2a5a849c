"""Serializer fields shared by the clinical endpoints."""

from __future__ import annotations

from operator import attrgetter

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class ProductCodeField(serializers.Field):
    """A product (intervention) code as the requesting user may see it: in a blinded trial a
    product and its matching placebo both read ``BLINDED:<active code>`` (``trials.blinding``).

    ``code`` and ``subject`` are dotted paths from the serialized object.
    """

    def __init__(self, code: str, subject: str, **kwargs):
        self._code, self._subject = attrgetter(code), attrgetter(subject)
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj):
        return self.row_reader()(obj)

    def row_reader(self):
        """The code shown of a record, as a function of the record (a list's rows,
        ``edc.core.api.valuelists``: the request's user read once, not per row)."""
        from .masking import shown_product

        user, code, subject = self.context["request"].user, self._code, self._subject
        return lambda obj: shown_product(user, subject(obj), code(obj))
