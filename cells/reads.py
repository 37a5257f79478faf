"""Reads compiled once per process: the few queries a polled page repeats with new values each time.

Building and compiling a queryset is most of what a small read costs in Django: the status's six reads made it
about four times the Python work of a request reading three small rows (GET /api/me; issue 13), and the status
is polled. A CompiledRead builds its queryset once,
with placeholders for its arguments, lets Django compile it, and then runs that SQL with each call's values.
The instances come out as iterating the queryset would make them: the same converters, select_related objects
and annotations, by the same code Django's own iteration uses (ModelIterable: the compiler's select and
klass_info, get_related_populators). tests/cells/test_reads.py compares every read with its queryset.

Only what the SQL parameters carry may vary: `build` must use its arguments as filter values, never to choose
the shape of the query (a filter added for some values, a None that becomes IS NULL). A read of another shape is
another CompiledRead. The arguments reach the database as given, without the field's conversion: pass the
filter's own type (an int for an id, a str for a name).
"""
from __future__ import annotations

from typing import Callable

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


class CompiledRead:
    def __init__(self, build: Callable[..., QuerySet], *placeholders):
        """`build(*placeholders)` is the queryset; each placeholder must be a value of the filter's type that
        none of the query's other parameters has (e.g. -1 for an id, a marker string for a name)."""
        self.build = build
        self.placeholders = placeholders
        self._compiled: _Compiled | None = None  # compiled on the first call, for the database the router gives

    def __call__(self, *args) -> list[Model]:
        if len(args) != len(self.placeholders):
            raise TypeError(f"this read takes {len(self.placeholders)} arguments, not {len(args)}")
        if self._compiled is None:
            self._compiled = _Compiled(self.build(*self.placeholders), self.placeholders)
        return self._compiled.run(args)


class _Compiled:
    def __init__(self, queryset: QuerySet, placeholders: tuple):
        if (queryset._prefetch_related_lookups or queryset._known_related_objects or queryset._fields is not None
                or queryset.query.select_for_update or queryset.query.combinator):
            raise TypeError("a CompiledRead is a plain read of model instances: no prefetch_related, values, related "
                            "manager, select_for_update (Django checks its transaction when compiling) or union")
        self.db = queryset.db
        compiler = queryset.query.get_compiler(using=self.db)
        self.sql, params = compiler.as_sql()  # also fills select, klass_info and annotation_col_map
        self.params = list(params)
        self.slots = [(i, j) for i, value in enumerate(self.params) for j, p in enumerate(placeholders)
                      if type(value) is type(p) and value == p]
        missing = [p for j, p in enumerate(placeholders) if j not in {s[1] for s in self.slots}]
        if missing:
            raise ValueError(f"placeholders {missing!r} are not parameters of the compiled query")
        select, klass_info = compiler.select, compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start:self.end]]
        self.populators = get_related_populators(klass_info, select, self.db)
        self.annotations = list(compiler.annotation_col_map.items())
        self.converters = list(compiler.get_converters([s[0] for s in select]).items())

    def run(self, args: tuple) -> list[Model]:
        params = list(self.params)
        for i, j in self.slots:
            params[i] = args[j]
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        out = []
        for row in rows:
            if self.converters:
                row = list(row)
                for pos, (converters, expression) in self.converters:
                    for convert in converters:
                        row[pos] = convert(row[pos], expression, connection)
            obj = self.model.from_db(self.db, self.init_list, row[self.start:self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, pos in self.annotations:
                setattr(obj, name, row[pos])
            out.append(obj)
        return out
