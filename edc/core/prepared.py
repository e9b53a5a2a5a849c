"""A query the ORM compiles to SQL once per process, run on every request with its parameter.

Django rebuilds and recompiles a queryset on every evaluation; for a query every API request
runs (the token with its user, roles and memberships: issue 19) that costs several times the
query itself. :class:`PreparedQuery` builds the queryset once with :data:`PARAMETER` where
the request's value goes (or other placeholders, one per value, e.g. :data:`MOMENT` for a
date-time), compiles it once per thread and database, and on each
:meth:`~PreparedQuery.run` executes that SQL with the values and makes the instances as
Django's ``ModelIterable`` does (``select_related`` objects and annotations included).
:class:`PreparedValues` does the same for a ``values()`` query of several shapes whose
values are integers (ids), each possibly used several times.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

#: Stands for the request's value in the queryset a :class:`PreparedQuery` builds.
PARAMETER = "\x1fprepared-parameter\x1f"
#: Stands for a date-time value.
MOMENT = dt.datetime(1, 1, 1, 0, 0, 0, 424242, tzinfo=dt.UTC)


class PreparedQuery:
    """``build()``: a queryset of model instances whose values are ``placeholders`` (each
    once)."""

    def __init__(self, build: Callable[[], QuerySet], placeholders: tuple = (PARAMETER,)):
        self._build, self._placeholders = build, placeholders
        self._local = threading.local()  # a compiler holds its thread's connection

    def _compiled(self, alias: str):
        cache = self._local.__dict__.setdefault("compiled", {})
        if alias not in cache:
            compiler = self._build().query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            params = list(params)
            if any(params.count(p) != 1 for p in self._placeholders):
                raise ValueError("a prepared query takes each placeholder exactly once")
            fields = compiler.klass_info["select_fields"]
            start, end = fields[0], fields[-1] + 1
            cache[alias] = (compiler, sql, params,
                            [params.index(p) for p in self._placeholders], start, end,
                            [f[0].target.attname for f in compiler.select[start:end]],
                            get_related_populators(compiler.klass_info, compiler.select, alias))
        return cache[alias]

    def run(self, *values, alias: str = "default") -> list:
        """The instances the query finds with ``values`` for its placeholders."""
        compiler, sql, params, places, start, end, names, populators = self._compiled(alias)
        params = list(params)
        for at, value in zip(places, values, strict=True):
            params[at] = value
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        model = compiler.klass_info["model"]
        found = []
        for row in compiler.results_iter([rows]):
            obj = model.from_db(alias, names, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in compiler.annotation_col_map.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


#: First of the integers that stand for the values of a :class:`PreparedValues` query: within
#: the range of every integer column (Django drops a lookup of a value out of its column's
#: range from the SQL), far above any id or count the project stores.
INTEGER_PLACEHOLDER = 2_000_000_001


class PreparedValues:
    """A ``values()`` query compiled once per shape and thread, run with integer values.

    ``build(shape, *placeholders)`` returns the queryset for one ``shape`` (the caller's key for
    everything that changes the SQL: the model, which values are None, the length of a
    list); each integer value is given as a placeholder (:data:`INTEGER_PLACEHOLDER`,
    the next integer, ...), None as None. A placeholder may be used several times (a record's
    id in the row, its lock and its verifications). The compiled statement must take every
    placeholder as a parameter unchanged (an integer column), never converted or written into
    the SQL: otherwise :class:`ValueError`, as where a query's shape depends on a value that
    the key does not name. :meth:`run` returns the rows as ``values()`` does (dicts, the
    columns' converters applied); none, without a statement, for a shape Django finds empty
    (``EmptyResultSet``: every list empty).
    """

    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._local = threading.local()  # a compiler holds its thread's connection

    def _compiled(self, alias: str, shape, values: tuple):
        cache = self._local.__dict__.setdefault("compiled", {})
        key = (alias, shape, tuple(v is None for v in values))
        if key not in cache:
            cache[key] = self._compile(alias, shape, values)
        return cache[key]

    def _compile(self, alias: str, shape, values: tuple):
        placeholders = [None if v is None else INTEGER_PLACEHOLDER + i
                        for i, v in enumerate(values)]
        query = self._build(shape, *placeholders).query
        compiler = query.get_compiler(using=alias)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # a shape that finds nothing (empty lists): no statement
            return None
        used = {p for p in placeholders if p is not None}
        # (position, the parameter's type: an int or psycopg's Int4/Int8 around one)
        places = [[(at, type(param)) for at, param in enumerate(params)
                   if isinstance(param, int) and not isinstance(param, bool) and param == p]
                  if p is not None else [] for p in placeholders]
        taken = {at for found in places for at, _ in found}
        others = [str(param) for at, param in enumerate(params) if at not in taken]
        if (not all(places[i] for i, p in enumerate(placeholders) if p is not None)
                or any(str(p) in text for p in used for text in (*others, sql))):
            raise ValueError("a prepared values query takes its placeholders as integer "
                             "parameters")
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return compiler, sql, list(params), places, names

    def run(self, shape, *values: int | None, alias: str = "default") -> list[dict]:
        """The rows for ``values`` (None where the shape has none) of the query ``shape``."""
        compiled = self._compiled(alias, shape, values)
        if compiled is None:
            return []
        compiler, sql, params, places, names = compiled
        params = list(params)
        for value, at in zip(values, places, strict=True):
            for position, kind in at:
                params[position] = kind(value)
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [dict(zip(names, row, strict=True)) for row in compiler.results_iter([rows])]


class PreparedShapes:
    """A :class:`PreparedQuery` of model instances per shape: ``build(shape, *placeholders)``
    returns the queryset for one ``shape`` (the caller's key for everything that changes the
    SQL, e.g. a user's scope: ``roles.scope_shape``), each value given as a placeholder
    (:data:`INTEGER_PLACEHOLDER`, the next integer, ...: integer ids), each used once.
    :meth:`run` finds the instances with the values for those placeholders."""

    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._queries: dict = {}
        self._lock = threading.Lock()

    def run(self, shape, *values: int, alias: str = "default") -> list:
        key = (shape, len(values))
        query = self._queries.get(key)
        if query is None:
            placeholders = tuple(INTEGER_PLACEHOLDER + i for i in range(len(values)))
            query = PreparedQuery(lambda: self._build(shape, *placeholders), placeholders)
            with self._lock:
                query = self._queries.setdefault(key, query)
        return query.run(*values, alias=alias)
