"""List pages read as ``.values()`` rows, shown by the view's own serializer (issue 19).

:class:`ValuesListMixin` answers a viewset's ``list`` with the query it answered before (the
scoping of ``get_queryset``, every filter and ordering of ``filter_queryset``, the cursor
pagination) read as dicts instead of model instances: the model's columns, the queryset's
annotations and the columns ``list_related`` names. Each row becomes a :class:`Row`, its
columns as attributes, and the request's serializer (the fields its ``get_fields`` leaves
for this user) shows it as it shows a record: plain fields by column
(``representation.PlainFieldsMixin``), every other field by DRF's own ``get_attribute`` and
``to_representation``. The masking therefore runs the very code it runs on an instance (a
method field or a product field asking ``trials.masking``); a field the row cannot serve fails
(AttributeError), it never shows something else.

A row also has the model's properties its serializer's fields read (e.g. a visit's
``out_of_window``), ``pk``, and per ``list_related`` relation an object with the related
record's primary key and named columns (one per related record of the page).
"""

from __future__ import annotations

import inspect
from functools import cached_property
from operator import attrgetter

from django.core.exceptions import ImproperlyConfigured
from rest_framework.response import Response


class Row:
    """A ``.values()`` row read as a record: its columns are its attributes."""

    def __init__(self, columns: dict):
        self.__dict__ = columns


#: (model, property names) -> the Row class with those properties of the model.
_row_classes: dict[tuple, type] = {}


def row_class(model, properties: tuple[str, ...]) -> type:
    """The :class:`Row` of ``model``'s rows: ``pk`` and the model's ``properties``."""
    key = (model, properties)
    made = _row_classes.get(key)
    if made is None:
        members = {name: inspect.getattr_static(model, name) for name in properties}
        members["pk"] = property(attrgetter(model._meta.pk.attname))
        made = _row_classes[key] = type(f"{model.__name__}Row", (Row,), members)
    return made


def _terms(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


class ValuesListMixin:
    """``list`` from ``.values()`` rows (see module doc); the serializer shows each row."""

    #: relation -> columns of the related record a row's fields read (``subject.trial_id``).
    list_related: dict[str, tuple[str, ...]] = {}

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        columns = self._list_columns(queryset)
        rows = queryset.values(*columns)
        page = self.paginate_queryset(rows)
        data = self.show_rows(list(rows) if page is None else page, set(columns))
        return Response(data) if page is None else self.get_paginated_response(data)

    def _list_columns(self, queryset) -> list[str]:
        """The model's columns, the queryset's annotations, the related columns and every
        ordering term (a cursor's position is read from the row)."""
        model = queryset.model
        columns = [f.attname for f in model._meta.concrete_fields]
        columns += [name for name in queryset.query.annotation_select if name not in columns]
        for relation, names in self.list_related.items():
            if relation in columns:
                raise ImproperlyConfigured(f"{relation} is a column and a related record")
            columns += [f"{relation}__{name}" for name in names]
        terms = [*_terms(getattr(self, "ordering_fields", None)),
                 *_terms(getattr(self.paginator, "ordering", None))]
        if "__all__" in terms:
            raise ImproperlyConfigured("a values list needs its ordering fields named")
        columns += [name for name in dict.fromkeys(term.lstrip("-") for term in terms)
                    if name not in columns]
        return columns

    def show_rows(self, rows: list[dict], columns: set[str]) -> list[dict]:
        """Each row as the request's serializer shows the record."""
        serializer = self.get_serializer()
        model = serializer.Meta.model
        properties = tuple(sorted({
            field.source_attrs[0] for field in serializer._readable_fields
            if field.source_attrs and field.source_attrs[0] not in columns and isinstance(
                inspect.getattr_static(model, field.source_attrs[0], None),
                property | cached_property)}))
        make = row_class(model, properties)
        related = {}
        for relation, names in self.list_related.items():
            field = model._meta.get_field(relation)
            related[relation] = (field.attname, field.related_model._meta.pk.attname, names, {})
        shown = []
        for columns_of_row in rows:
            row = make(columns_of_row)
            for relation, (attname, pk, names, seen) in related.items():
                key = columns_of_row[attname]
                record = seen.get(key)
                if record is None and key is not None:
                    record = seen[key] = Row({pk: key, **{
                        name: columns_of_row[f"{relation}__{name}"] for name in names}})
                setattr(row, relation, record)
            shown.append(serializer.to_representation(row))
        return shown
