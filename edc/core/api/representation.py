"""Reads of list pages without DRF's per-field dispatch, with DRF's output.

:class:`PlainFieldsMixin` (on a ``ModelSerializer``) plans once per serializer which readable
fields are *plain*: a stock DRF field (integer, float, character, boolean, choice, date,
date-time in ISO 8601, primary key of a relation) whose ``source`` is one attribute of the
instance. A plain field is read with ``getattr`` and converted as DRF's own
``to_representation`` would; every other field (nested serializers, method fields, dotted
sources, subclasses that change how a value is shown, such as a blinded product code) goes
through DRF as before. On a page of 100 records of 30 fields this removes most of the
serializer's cost; ``tests/unit/test_representation.py`` checks that the output is DRF's.

It also builds the fields ``ModelSerializer.get_fields`` derives from the model once per
serializer class: every serializer gets its own deep copy (DRF's own way of copying declared
fields), so what a subclass's ``get_fields`` then removes or changes for one request (a
sponsor's birth dates) stays that request's.
"""

from __future__ import annotations

import copy
import inspect
import operator
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone
from rest_framework import fields, relations
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings


def _iso_datetime(value):
    """DRF's ``DateTimeField`` in ISO 8601: in the current time zone, UTC written ``Z``."""
    if isinstance(value, str):
        return value
    if settings.USE_TZ:
        value = (value.astimezone(timezone.get_current_timezone()) if timezone.is_aware(value)
                 else timezone.make_aware(value, timezone.get_current_timezone()))
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso_date(value):
    return value if isinstance(value, str) else value.isoformat()


def _stock(field, cls) -> bool:
    """``field`` shows values as DRF's ``cls`` does (no override of ``to_representation``)."""
    return isinstance(field, cls) and type(field).to_representation is cls.to_representation


def _converter(field) -> Callable | None:
    """What ``field.to_representation`` amounts to for a non-empty model value (None: not
    plain)."""
    if _stock(field, fields.BooleanField):
        return bool
    if _stock(field, fields.ChoiceField):
        return field.to_representation
    big = getattr(fields, "BigIntegerField", None)  # DRF >= 3.15
    if big is not None and _stock(field, big) and not getattr(
            field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING):
        return int
    if _stock(field, fields.IntegerField):
        return int
    if _stock(field, fields.FloatField):
        return float
    if _stock(field, fields.CharField):
        return str
    if _stock(field, fields.DateTimeField) and not hasattr(field, "timezone") and getattr(
            field, "format", api_settings.DATETIME_FORMAT) == fields.ISO_8601:
        return _iso_datetime
    if _stock(field, fields.DateField) and getattr(
            field, "format", api_settings.DATE_FORMAT) == fields.ISO_8601:
        return iso_date
    return None


def _related_id(field, model) -> str | None:
    """The attname holding the primary key a stock ``PrimaryKeyRelatedField`` shows."""
    if not (_stock(field, relations.PrimaryKeyRelatedField) and field.pk_field is None
            and type(field).get_attribute is relations.RelatedField.get_attribute
            and len(field.source_attrs) == 1):
        return None
    try:
        model_field = model._meta.get_field(field.source)
    except Exception:  # not a model field (a property, an annotation)
        return None
    if not getattr(model_field, "many_to_one", False) and not getattr(
            model_field, "one_to_one", False) or not model_field.concrete:
        return None
    return model_field.attname


class _Prototype:
    """An unbound field made once; :meth:`fresh` copies it for one serializer with its own
    attributes and containers (a validator list, an error message dict): a field made again,
    at a fraction of the cost."""

    def __init__(self, field):
        self.field = field
        self.containers = [name for name, value in field.__dict__.items()
                           if type(value) in (dict, list)]

    def fresh(self):
        field = object.__new__(type(self.field))
        state = field.__dict__ = self.field.__dict__.copy()
        for name in self.containers:
            state[name] = state[name].copy()
        return field


def plain_read(field, model) -> tuple[str, Callable] | None:
    """(attribute, converter) when ``field`` is plain for ``model``'s records, else None."""
    attname = _related_id(field, model)
    if attname is not None:
        return attname, int
    convert = _converter(field)
    source = field.source_attrs[0] if len(field.source_attrs) == 1 else None
    if convert is None or source is None or callable(
            inspect.getattr_static(model, source, None)):  # DRF calls methods
        return None
    return source, convert


class PlainFieldsMixin:
    """DRF's ``to_representation``, with plain fields read directly (see module doc)."""

    def get_fields(self):
        """``ModelSerializer.get_fields`` with the model's fields derived once per class: each
        is made once from the arguments DRF made it with (what DRF's own copy of a field
        does, less the introspection) and every serializer gets a copy of it
        (:class:`_Prototype`); declared fields are deep-copied, as DRF does."""
        cls = type(self)
        recipe = cls.__dict__.get("_field_recipe")
        if recipe is None:
            built = super().get_fields()
            recipe = [(name, None if name in self._declared_fields
                       else (type(field), field._args, field._kwargs)
                       if isinstance(field, BaseSerializer)
                       else _Prototype(type(field)(*field._args, **field._kwargs)))
                      for name, field in built.items()]
            cls._field_recipe = recipe
            return built
        declared = copy.deepcopy(self._declared_fields)
        return {name: declared[name] if made is None else made[0](*made[1], **made[2])
                if type(made) is tuple else made.fresh() for name, made in recipe}

    def _plain_plan(self) -> list[tuple]:
        """(name, attribute, converter, None) per plain field, (name, None, None, field) per
        other field, computed once per serializer instance (a list's child serves a page)."""
        plan = self.__dict__.get("_plain_fields")
        if plan is None:
            model = self.Meta.model
            plan = []
            for field in self._readable_fields:
                read = plain_read(field, model)
                plan.append((field.field_name, None, None, field) if read is None
                            else (field.field_name, *read, None))
            self.__dict__["_plain_fields"] = plan
        return plan

    def _row_plan(self) -> tuple:
        """The plan as one read per row: every field name in order, an ``attrgetter`` of the
        plain fields' attributes, their names and converters, and the other fields."""
        row = self.__dict__.get("_row_read")
        if row is None:
            plan = self._plain_plan()
            plain = [(name, attr, convert) for name, attr, convert, field in plan
                     if field is None]
            attrs = [attr for _, attr, _ in plain]
            getter = (operator.attrgetter(*attrs) if len(attrs) > 1
                      else (lambda obj: (getattr(obj, attrs[0]),)) if attrs else None)
            row = self.__dict__["_row_read"] = (
                [name for name, *_ in plan], getter, [name for name, *_ in plain],
                [(name, convert) for name, _, convert in plain],
                [(name, field) for name, _, _, field in plan if field is not None])
        return row

    def to_representation(self, instance):
        names, getter, plain_names, converters, others = self._row_plan()
        ret = dict.fromkeys(names)  # DRF's order of the fields
        if getter is not None:
            ret.update(zip(plain_names, getter(instance), strict=True))
            for name, convert in converters:
                value = ret[name]
                if value is not None:
                    ret[name] = convert(value)
        return show_others(ret, others, instance)


def show_others(ret: dict, others: list[tuple], instance) -> dict:
    """``ret`` with each of the ``others`` (name, field) shown from ``instance`` as DRF shows
    it (``Serializer.to_representation``)."""
    for name, field in others:
        try:
            attribute = field.get_attribute(instance)
        except SkipField:
            del ret[name]
            continue
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        ret[name] = None if check is None else field.to_representation(attribute)
    return ret


def own_and(model, *related: str) -> list[str]:
    """``only()`` arguments: every column of ``model`` and the ``related`` ones a page shows
    (a related row selected whole builds a heavy instance per record)."""
    return [*(f.name for f in model._meta.concrete_fields), *related]
