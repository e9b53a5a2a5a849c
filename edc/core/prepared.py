"""A query the ORM compiles to SQL once per process, run on every request with its parameter.

Django rebuilds and recompiles a queryset on every evaluation; for a query every API request
runs (the token with its user, roles and memberships: issue 19) that costs several times the
query itself. :class:`PreparedQuery` builds the queryset once with :data:`PARAMETER` where
the request's value goes (or other placeholders, one per value, e.g. :data:`MOMENT` for a
date-time), compiles it once per thread and database, and on each
:meth:`~PreparedQuery.run` executes that SQL with the values and makes the instances as
Django's ``ModelIterable`` does (``select_related`` objects and annotations included).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

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
