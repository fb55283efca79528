"""SOQL with bound values: no caller string is ever pasted into a query.

``soql_literal`` renders a Python value as a SOQL literal (strings quoted and escaped,
dates and datetimes in ISO 8601 UTC, lists for ``IN``); ``soql_identifier`` admits only
field and object names; ``format_soql`` fills ``:name`` placeholders of a template with
literals; :class:`Soql` builds a query piece by piece and ``check(describe)`` holds its
fields to the object's describe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Self

from connector_adapters.salesforce._models import SObjectDescribe
from connector_core import InvalidRequestError

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
_PATH = re.compile(rf"{_NAME.pattern}(\.{_NAME.pattern}){{0,4}}")
_PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {**_ESCAPES, "%": "\\%", "_": "\\_"}
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=", "LIKE")
SET_OPERATORS = ("IN", "NOT IN", "INCLUDES", "EXCLUDES")
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN", "INCLUDES", "EXCLUDES"]


def _error(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, connector="salesforce")


def _quote(text: str, escapes: Mapping[str, str]) -> str:
    for char in text:
        if (ord(char) < 0x20 and char not in escapes) or 0xD800 <= ord(char) <= 0xDFFF:
            raise _error(
                "a SOQL string cannot hold control characters other than \\n \\r \\t \\b \\f "
                "or lone surrogates"
            )
    return "'" + "".join(escapes.get(c, c) for c in text) + "'"


@dataclass(frozen=True, slots=True)
class Like:
    """A LIKE pattern whose text is matched literally (``%`` and ``_`` escaped)."""

    text: str
    leading: bool = False
    trailing: bool = False

    @classmethod
    def contains(cls, text: str) -> Like:
        return cls(text, True, True)

    @classmethod
    def starts_with(cls, text: str) -> Like:
        return cls(text, False, True)

    @classmethod
    def ends_with(cls, text: str) -> Like:
        return cls(text, True, False)

    def literal(self) -> str:
        if not isinstance(self.text, str):
            raise _error(f"a LIKE pattern needs text, got {type(self.text).__name__}")
        body = _quote(self.text, _LIKE_ESCAPES)[1:-1]
        return f"'{'%' if self.leading else ''}{body}{'%' if self.trailing else ''}'"


def _datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _error("a SOQL datetime needs a timezone: give an aware datetime (datetime.now(UTC))")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def soql_literal(value: Any) -> str:
    """``value`` as a SOQL literal. Raises InvalidRequestError for a value SOQL cannot
    hold (naive datetime, NaN, control characters, nested or empty lists, objects)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error("a SOQL number must be finite")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _error("a SOQL number must be finite")
        return format(value, "f")
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _quote(value, _ESCAPES)
    if isinstance(value, Like):
        return value.literal()
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        if not items:
            raise _error("an IN list needs at least one value (SOQL refuses 'IN ()')")
        if any(isinstance(i, list | tuple | set | frozenset | Like) for i in items):
            raise _error("an IN list holds plain values, not lists or patterns")
        return "(" + ", ".join(soql_literal(i) for i in items) + ")"
    raise _error(f"cannot bind a {type(value).__name__} in SOQL")


def soql_identifier(name: Any) -> str:
    """``name`` if it is a field or object name (``Name``, ``Custom__c``,
    ``Account.Owner.Name``); InvalidRequestError otherwise."""
    if not isinstance(name, str) or not _PATH.fullmatch(name):
        raise _error(
            f"{name!r} is not a SOQL field or object name "
            "(letters, digits and _, starting with a letter; '.' between relationships)"
        )
    return name


def format_soql(template: str, /, **values: Any) -> str:
    """``template`` with each ``:name`` outside quotes replaced by ``soql_literal(value)``.

    ``format_soql("SELECT Id FROM Contact WHERE Email = :email", email=given)``. Raises
    InvalidRequestError for a placeholder without a value or a value without a
    placeholder (a typo would otherwise drop a filter).
    """
    out: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(template):
        char = template[i]
        if char == "'":  # copy a quoted string of the template verbatim
            j = i + 1
            while j < len(template) and template[j] != "'":
                j += 2 if template[j] == "\\" else 1
            out.append(template[i : j + 1])
            i = j + 1
            continue
        match = _PLACEHOLDER.match(template, i) if char == ":" else None
        if match is None:
            out.append(char)
            i += 1
            continue
        name = match.group(1)
        if name not in values:
            raise _error(f"SOQL placeholder :{name} has no value")
        used.add(name)
        out.append(soql_literal(values[name]))
        i = match.end()
    unused = sorted(set(values) - used)
    if unused:
        raise _error(f"values without a placeholder in the SOQL: {', '.join(unused)}")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    operator: str
    value: Any

    def render(self) -> str:
        return f"{self.field} {self.operator} {soql_literal(self.value)}"


class Soql:
    """A SOQL query built from checked names and bound values.

    ``Soql("Account").select("Id", "Name").where("Name", "=", name).order_by("Id")``;
    ``str(query)`` is the SOQL. Conditions are joined by AND.
    """

    def __init__(self, sobject: str) -> None:
        self.sobject = soql_identifier(sobject)
        self._fields: list[str] = []
        self._count = False
        self._where: list[_Condition] = []
        self._order: list[tuple[str, bool]] = []
        self._limit: int | None = None

    def select(self, *fields: str) -> Self:
        self._fields.extend(soql_identifier(f) for f in fields)
        return self

    def count(self) -> Self:
        """``SELECT COUNT()``: the answer's totalSize is the count."""
        self._count = True
        return self

    def where(self, field: str, operator: Operator, value: Any) -> Self:
        op = operator.upper() if isinstance(operator, str) else operator
        if op not in COMPARISONS and op not in SET_OPERATORS:
            known = ", ".join((*COMPARISONS, *SET_OPERATORS))
            raise _error(f"unknown SOQL operator {operator!r}; known: {known}")
        is_list = isinstance(value, list | tuple | set | frozenset)
        if (op in SET_OPERATORS) != is_list:
            raise _error(f"operator {op} takes {'a list' if op in SET_OPERATORS else 'a value'}")
        if isinstance(value, Like) and op != "LIKE":
            raise _error("a Like pattern goes with the LIKE operator")
        condition = _Condition(soql_identifier(field), op, value)
        condition.render()  # refuse an unbindable value now, not at str()
        self._where.append(condition)
        return self

    def order_by(self, field: str, *, descending: bool = False) -> Self:
        self._order.append((soql_identifier(field), descending))
        return self

    def limit(self, n: int) -> Self:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _error(f"LIMIT must be an integer >= 1, got {n!r}")
        self._limit = n
        return self

    def identifiers(self) -> tuple[str, ...]:
        """Every field name the query uses (select, where, order by)."""
        names = [*self._fields, *(c.field for c in self._where), *(f for f, _ in self._order)]
        return tuple(dict.fromkeys(names))

    def check(self, describe: SObjectDescribe) -> Self:
        """Hold every field to ``describe`` (relationship paths are checked by their
        first segment); InvalidRequestError naming the unknown ones and the known."""
        if describe.name.lower() != self.sobject.lower():
            raise _error(f"describe of {describe.name!r} given for a query of {self.sobject!r}")
        known = {f.lower() for f in describe.field_names()}
        relationships = {
            f.relationship_name.lower() for f in describe.fields if f.relationship_name
        }
        unknown = []
        for name in self.identifiers():
            head = name.split(".")[0].lower()
            if head not in (relationships if "." in name else known):
                unknown.append(name)
        if unknown:
            listing = ", ".join(sorted(describe.field_names()))
            raise _error(
                f"field(s) {', '.join(unknown)} not found on {describe.name}; known: {listing}"
            )
        return self

    def build(self) -> str:
        if not self._count and not self._fields:
            raise _error("a SOQL query selects at least one field (or count())")
        parts = [f"SELECT {'COUNT()' if self._count else ', '.join(self._fields)}"]
        parts.append(f"FROM {self.sobject}")
        if self._where:
            parts.append("WHERE " + " AND ".join(c.render() for c in self._where))
        if self._order:
            order = ", ".join(f"{f} DESC" if d else f"{f} ASC" for f, d in self._order)
            parts.append(f"ORDER BY {order}")
        if self._limit is not None:
            parts.append(f"LIMIT {self._limit}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.build()

    def __repr__(self) -> str:
        return f"Soql({self.build()!r})"


def soql_fields(names: Iterable[str]) -> str:
    """``Id, Name, ...`` from checked names."""
    return ", ".join(soql_identifier(n) for n in names)
