"""List pages read as ``.values()`` rows, shown as the view's serializer shows a record
(issue 19).

:class:`ValuesListMixin` answers a viewset's ``list`` with the query it answered before (the
scoping of ``get_queryset``, every filter and ordering of ``filter_queryset``, the cursor
pagination), read as dicts instead of model instances. What a row shows is planned from the
request's own serializer, i.e. the fields its ``get_fields`` leaves for this user (a
sponsor's subject has no birth date: the column is not even read):

* a plain field (``representation.plain_read``) whose source is a column or an annotation of
  the query is that column, converted as DRF converts it (no conversion where the column's
  type already gives DRF's value: an integer, text or boolean column; a column an instance
  reads through a descriptor of its own is refused);
* a method field is its serializer's method called with a :class:`Row` of the row, as DRF
  calls it with the record; a field with a ``row_reader`` (the blinded product code) is the
  function of the record it returns, the code its ``to_representation`` runs; a plain field
  whose source is a model property (``out_of_window``) is that property of the row, shown as
  DRF shows it; a nested serializer of a one-to-one relation whose fields are all plain
  (a QLQ-C30 form's scores) is its columns read through the relation, None without a
  related row; every other field is shown by DRF's own ``get_attribute`` and
  ``to_representation`` on that row. A row has its columns as attributes, ``pk``, the
  model's properties those fields read, and per ``list_related`` relation an object with the
  related record's key and named columns. The masking therefore runs the very code it runs
  on an instance (``trials.masking``); a column the view did not name in ``list_columns`` is
  missing (AttributeError): a field never shows something else.

The plan is made once per serializer class, set of fields its ``get_fields`` leaves (a
sponsor's serializer gets its own), query annotations and view settings; each request binds
its own serializer's methods and fields to it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from functools import cached_property
from operator import attrgetter, itemgetter

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models.query_utils import DeferredAttribute
from rest_framework.fields import ChoiceField, SerializerMethodField
from rest_framework.response import Response
from rest_framework.serializers import ModelSerializer, Serializer

from .representation import PlainFieldsMixin, iso_date, plain_read, show_others

#: Converters that return a non-null value of a column of these internal types unchanged.
_UNCHANGED = {
    int: {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
          "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
          "PositiveSmallIntegerField"},
    str: {"CharField", "TextField", "SlugField"},
    bool: {"BooleanField"},
    float: {"FloatField"},
}


def _internal_type(model, column: str) -> str | None:
    """The internal type of ``model``'s ``column`` (a relation's: its target's; None: an
    annotation)."""
    try:
        field = model._meta.get_field(column)
    except FieldDoesNotExist:
        return None
    return (field.target_field if field.is_relation else field).get_internal_type()


def _unchanged(convert, model, column: str) -> bool:
    """Whether ``convert`` leaves every non-null value ``model``'s ``column`` reads as is (a
    choice field whose choices are text, each shown as itself: as a text column)."""
    if getattr(convert, "__func__", None) is ChoiceField.to_representation and all(
            type(key) is str and value == key
            for key, value in convert.__self__.choice_strings_to_values.items()):
        convert = str
    return _internal_type(model, column) in _UNCHANGED.get(convert, ())


def _as_read(convert, model, column: str):
    """``convert`` for the values of ``column`` (a date column's are dates: ``isoformat``)."""
    if convert is iso_date and _internal_type(model, column) == "DateField":
        return dt.date.isoformat
    return convert


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


def _method(serializer, field, name: str):
    """A method field's method of ``serializer``, which DRF calls with the record."""
    return getattr(serializer, name)


def _reader(serializer, field, arg):
    """A field's own read of a record (``row_reader``: a product code)."""
    return field.row_reader()


def _property_read(serializer, field, arg: tuple):
    """What DRF shows of ``field``, whose source is a property of the record (``arg``: it
    and the field's plain converter): the property, None as None, a value of the type the
    converter keeps as is (a boolean of a ``BooleanField``) as is, else the field's
    ``to_representation``."""
    source, convert = arg
    read, show = attrgetter(source), field.to_representation
    kept = convert if convert in _UNCHANGED else None

    def shown(record):
        value = read(record)
        return value if value is None or type(value) is kept else show(value)
    return shown


def _nested_read(field, model) -> tuple[str, list[tuple]] | None:
    """A nested serializer of a one-to-one relation of ``model`` (either side) whose fields
    are all plain: (the related key's column, [(name, column, converter or None)]) as
    ``.values()`` reads them through the relation (no related row: a null key, shown None,
    as DRF shows a missing related record); None for any other field."""
    if not isinstance(field, Serializer) or len(field.source_attrs) != 1:
        return None
    try:
        relation = model._meta.get_field(field.source)
    except FieldDoesNotExist:
        return None
    if not relation.one_to_one:
        return None
    if (type(field).to_representation not in (PlainFieldsMixin.to_representation,
                                              Serializer.to_representation)
            or type(field).get_fields not in (PlainFieldsMixin.get_fields,
                                              ModelSerializer.get_fields)):
        # its own representation, or fields per request (which the plan's key does not name)
        raise ImproperlyConfigured(f"{field.field_name}: a nested serializer of its own")
    related = relation.related_model
    columns = {f.attname for f in related._meta.concrete_fields}
    reads = []
    for nested in field._readable_fields:
        read = plain_read(nested, related)
        if read is None or read[0] not in columns:
            raise ImproperlyConfigured(f"{field.field_name}.{nested.field_name}: a values list "
                                       "shows only plain fields of a nested record")
        column, convert = read
        reads.append((nested.field_name, f"{field.source}__{column}",
                      None if _unchanged(convert, related, column)
                      else _as_read(convert, related, column)))
    return f"{field.source}__{related._meta.pk.attname}", reads


def _terms(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


class ListPlan:
    """How a serializer shows rows of ``queryset`` (see module doc). Made once per serializer
    class, fields left by its ``get_fields`` (names, classes, sources), query and view
    settings (:meth:`of`); each request binds its own serializer's methods and fields."""

    def __init__(self, serializer, queryset, columns: tuple[str, ...],
                 related: dict[str, tuple[str, ...]], ordering: list[str]):
        model = queryset.model
        readable = {f.attname for f in model._meta.concrete_fields}
        readable |= set(queryset.query.annotation_select)
        self.names, plain, self.bound, self.nested, properties = [], [], [], [], set()
        for field in serializer._readable_fields:
            name = field.field_name
            self.names.append(name)
            read = plain_read(field, model)
            if read is not None and read[0] in readable:
                if not isinstance(inspect.getattr_static(model, read[0], None),
                                  DeferredAttribute | None):
                    raise ImproperlyConfigured(f"{read[0]}: an instance reads it through its "
                                               "own descriptor, a row cannot")
                plain.append((name, *read))
                continue
            if type(field) is SerializerMethodField:  # DRF calls the method with the record
                self.bound.append((name, _method, field.method_name))
                continue
            nested = _nested_read(field, model)
            if nested is not None:
                self.nested.append((name, *nested))
                continue
            source = field.source_attrs[0] if len(field.source_attrs) == 1 else None
            is_property = isinstance(inspect.getattr_static(model, source, None),
                                     property | cached_property)
            if is_property:
                properties.add(source)
            if hasattr(field, "row_reader"):  # the field's own read of a record (a product)
                self.bound.append((name, _reader, None))
            elif is_property and read is not None:  # DRF's get_attribute, less its dispatch
                self.bound.append((name, _property_read, (source, read[1])))
            else:
                self.bound.append((name, None, None))
        self.plain_names = [name for name, _, _ in plain]
        plain_columns = [column for _, column, _ in plain]
        self.getter = (itemgetter(*plain_columns) if len(plain_columns) > 1
                       else (lambda row: (row[plain_columns[0]],)) if plain_columns else None)
        self.converters = [(name, _as_read(convert, model, column))
                           for name, column, convert in plain
                           if not _unchanged(convert, model, column)]
        self.make = row_class(model, tuple(sorted(properties)))
        self.related = []
        wanted = [*plain_columns, *columns, *queryset.query.annotation_select,
                  *(column for _, key, reads in self.nested
                    for column in (key, *(column for _, column, _ in reads)))]
        for relation, names in related.items():
            field = model._meta.get_field(relation)
            if relation in wanted:
                raise ImproperlyConfigured(f"{relation} is a column and a related record")
            self.related.append((relation, field.attname, field.related_model._meta.pk.attname,
                                 [(name, f"{relation}__{name}") for name in names]))
            wanted += [field.attname, *(f"{relation}__{name}" for name in names)]
        if "__all__" in ordering:
            raise ImproperlyConfigured("a values list needs its ordering fields named")
        wanted += [term.lstrip("-") for term in ordering]  # a cursor reads its position
        self.columns = list(dict.fromkeys(wanted))

    @classmethod
    def of(cls, serializer, queryset, columns: tuple[str, ...],
           related: dict[str, tuple[str, ...]], ordering: list[str]) -> ListPlan:
        """The plan of ``serializer``'s fields for ``queryset``, made on first use."""
        key = (type(serializer), queryset.model, tuple(queryset.query.annotation_select),
               columns, tuple(related.items()), tuple(ordering),
               tuple((f.field_name, type(f), f.source) for f in serializer._readable_fields))
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = cls(serializer, queryset, columns, related, ordering)
        return plan

    def show(self, rows: list[dict], serializer) -> list[dict]:
        """``rows`` as ``serializer`` (this request's) shows them."""
        plain_names, getter = self.plain_names, self.getter
        converters, make, nested = self.converters, self.make, self.nested
        fields, methods, others = serializer.fields, [], []
        for name, bind, arg in self.bound:
            if bind is None:
                others.append((name, fields[name]))
            else:
                methods.append((name, bind(serializer, fields[name], arg)))
        seen = {relation: {} for relation, *_ in self.related}
        shown = []
        blank = dict.fromkeys(self.names)  # DRF's order of the fields, copied per row
        for row in rows:
            ret = blank.copy()
            if getter is not None:
                ret.update(zip(plain_names, getter(row), strict=True))
            for name, convert in converters:
                value = ret[name]
                if value is not None:
                    ret[name] = convert(value)
            for name, key, reads in nested:
                ret[name] = None if row[key] is None else {
                    shown: value if value is None or convert is None else convert(value)
                    for shown, column, convert in reads for value in (row[column],)}
            if others or methods:
                record = make(row)
                for relation, attname, pk, names_of in self.related:
                    key = row[attname]
                    other = seen[relation].get(key)
                    if other is None and key is not None:
                        other = seen[relation][key] = Row(
                            {pk: key, **{name: row[column] for name, column in names_of}})
                    setattr(record, relation, other)
                for name, method in methods:
                    ret[name] = method(record)
                show_others(ret, others, record)
            shown.append(ret)
        return shown


#: ListPlan.of's plans.
_plans: dict[tuple, ListPlan] = {}


class ValuesListMixin:
    """``list`` from ``.values()`` rows (see module doc)."""

    #: Columns (attnames) that fields other than plain ones read (``arm_id``), beyond the
    #: plain fields' own columns and the queryset's annotations.
    list_columns: tuple[str, ...] = ()
    #: relation -> columns of the related record other fields read (``subject.trial_id``).
    list_related: dict[str, tuple[str, ...]] = {}

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        serializer = self.get_serializer()
        plan = ListPlan.of(serializer, queryset, self.list_columns, self.list_related,
                           [*_terms(getattr(self, "ordering_fields", None)),
                            *_terms(getattr(self.paginator, "ordering", None))])
        rows = queryset.values(*plan.columns)
        page = self.paginate_queryset(rows)
        data = plan.show(list(rows) if page is None else page, serializer)
        return Response(data) if page is None else self.get_paginated_response(data)
