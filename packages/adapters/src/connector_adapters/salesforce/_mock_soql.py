"""The SOQL subset MockSalesforce answers: ``SELECT f1, f2 | COUNT() FROM Obj
[WHERE f op value [AND ...]] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]``
with ``= != <> < <= > >= LIKE IN NOT IN`` and string, number, boolean, null, date,
datetime and list literals. Anything else is a QueryError (MALFORMED_QUERY) saying so.
String comparison is case-insensitive, as in Salesforce."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_adapters.salesforce._errors import salesforce_error
from connector_core import ConnectorError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_UNESCAPE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b"}
_UNESCAPE["f"] = "\f"
SUBSET = (
    "the mock answers a SOQL subset: SELECT fields or COUNT() FROM one object, WHERE "
    "comparisons joined by AND, ORDER BY, LIMIT"
)


def malformed(message: str, code: str = "MALFORMED_QUERY") -> ConnectorError:
    return salesforce_error(
        400, [{"message": message, "errorCode": code}], operation="query (mock)"
    )


@dataclass(frozen=True)
class Literal:
    kind: str  # string, like, number, boolean, null, date, datetime, list
    value: Any


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Literal


@dataclass
class ParsedQuery:
    sobject: str
    fields: list[str] = field(default_factory=list)
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # field, desc, nulls last
    limit: int | None = None


def _tokens(soql: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = soql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise malformed(f"unexpected text at position {pos}; {SUBSET}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(raw: str, *, keep_like_escapes: bool) -> str:
    out = []
    i = 1
    while i < len(raw) - 1:
        char = raw[i]
        if char == "\\":
            nxt = raw[i + 1]
            if nxt in "%_" or (nxt == "\\" and keep_like_escapes):
                if not keep_like_escapes:
                    raise malformed(f"invalid escape \\{nxt} outside LIKE")
                out.append("\\" + nxt)  # kept escaped: a literal character of the pattern
            elif nxt in _UNESCAPE:
                out.append(_UNESCAPE[nxt])
            else:
                raise malformed(f"invalid escape sequence \\{nxt}")
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, soql: str) -> None:
        self.tokens = _tokens(soql)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def next(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.upper() in words:
            self.pos += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            raise malformed(f"expected {word} near {self.peek()[1]!r}; {SUBSET}")

    def name(self) -> str:
        kind, text = self.next()
        if kind != "word":
            raise malformed(f"expected a name, found {text!r}")
        if "." in text:
            raise malformed(f"relationship fields ({text}) are not in the mock's subset")
        return text

    def literal(self, *, like: bool = False) -> Literal:
        kind, text = self.next()
        if kind == "string":
            return Literal("like" if like else "string", _unquote(text, keep_like_escapes=like))
        if kind == "number":
            return Literal("number", Decimal(text))
        if kind == "datetime":
            return Literal("datetime", datetime.fromisoformat(text))
        if kind == "date":
            return Literal("date", date.fromisoformat(text))
        if kind == "word" and text.lower() in ("true", "false"):
            return Literal("boolean", text.lower() == "true")
        if kind == "word" and text.lower() == "null":
            return Literal("null", None)
        raise malformed(f"expected a literal, found {text!r}; {SUBSET}")

    def parse(self) -> ParsedQuery:
        self.expect("SELECT")
        fields: list[str] = []
        count = False
        if self.peek()[1].upper() == "COUNT":
            self.next()
            if self.next()[1] != "(" or self.next()[1] != ")":
                raise malformed("only COUNT() is in the mock's subset")
            count = True
        else:
            fields.append(self.name())
            while self.peek()[1] == ",":
                self.next()
                fields.append(self.name())
        self.expect("FROM")
        query = ParsedQuery(self.name(), fields, count)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
            if self.peek()[1].upper() in ("OR", "NOT"):
                raise malformed(f"{self.peek()[1].upper()} is not in the mock's subset")
        if self.keyword("ORDER"):
            self.expect("BY")
            query.order.append(self.order_item())
            while self.peek()[1] == ",":
                self.next()
                query.order.append(self.order_item())
        if self.keyword("LIMIT"):
            kind, text = self.next()
            if kind != "number" or not text.isdigit():
                raise malformed("LIMIT takes a whole number")
            query.limit = int(text)
        if self.peek()[0] != "end":
            raise malformed(f"unexpected {self.peek()[1]!r}; {SUBSET}")
        return query

    def condition(self) -> Condition:
        name = self.name()
        kind, text = self.next()
        op = text.upper()
        if kind == "op":
            return Condition(name, "!=" if op == "<>" else op, self.literal())
        if op == "LIKE":
            return Condition(name, "LIKE", self.literal(like=True))
        if op == "NOT" and self.keyword("IN"):
            op = "NOT IN"
        if op in ("IN", "NOT IN"):
            if self.next()[1] != "(":
                raise malformed(f"{op} takes a list in parentheses")
            items = [self.literal()]
            while self.peek()[1] == ",":
                self.next()
                items.append(self.literal())
            if self.next()[1] != ")":
                raise malformed(f"{op} list not closed")
            return Condition(name, op, Literal("list", items))
        raise malformed(f"operator {text!r} is not in the mock's subset; {SUBSET}")

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.name()
        descending = self.keyword("DESC")
        if not descending:
            self.keyword("ASC")
        nulls_last = descending
        if self.keyword("NULLS"):
            nulls_last = self.keyword("LAST")
            if not nulls_last:
                self.expect("FIRST")
        return name, descending, nulls_last


def parse_soql(soql: str) -> ParsedQuery:
    """The parsed query; QueryError (MALFORMED_QUERY) outside the subset."""
    if not isinstance(soql, str) or not soql.strip():
        raise malformed("the query is empty")
    return _Parser(soql).parse()


# -- evaluation -------------------------------------------------------------------------


def _typed(value: Any, sf_type: str) -> Any:
    """A stored (JSON) value as something comparable for its Salesforce type."""
    if value is None:
        return None
    try:
        if sf_type == "datetime":
            return datetime.fromisoformat(str(value))
        if sf_type == "date":
            return date.fromisoformat(str(value))
        if sf_type in ("int", "long", "double", "currency", "percent"):
            return Decimal(str(value))
    except (ValueError, InvalidOperation):
        return None
    if sf_type == "boolean":
        return bool(value)
    return str(value).casefold()


def _literal_value(literal: Literal, sf_type: str, field_name: str) -> Any:
    kind = literal.kind
    expected = {
        "datetime": ("datetime",),
        "date": ("date",),
        "boolean": ("boolean",),
        "int": ("number",),
        "long": ("number",),
        "double": ("number",),
        "currency": ("number",),
        "percent": ("number",),
    }.get(sf_type, ("string", "like"))
    if kind == "null":
        return None
    if kind not in expected:
        raise malformed(
            f"value of filter criterion for field '{field_name}' must be of type {sf_type}",
            "INVALID_QUERY_FILTER_OPERATOR",
        )
    if kind in ("string", "like"):
        return str(literal.value) if kind == "like" else str(literal.value).casefold()
    return literal.value


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _matches(
    cond: Condition, record: Mapping[str, Any], types: Mapping[str, tuple[str, str]]
) -> bool:
    name, sf_type = types[cond.field.lower()]
    have = _typed(record.get(name), sf_type)
    if cond.op in ("IN", "NOT IN"):
        wanted = [_literal_value(v, sf_type, cond.field) for v in cond.value.value]
        return (have in wanted) == (cond.op == "IN")
    want = _literal_value(cond.value, sf_type, cond.field)
    if cond.op == "LIKE":
        return have is not None and bool(_like(str(want)).fullmatch(str(record.get(name))))
    if want is None or have is None:
        if cond.op == "=":
            return have is None and want is None
        if cond.op == "!=":
            return (have is None) != (want is None)
        return False
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[cond.op](have, want)


def run_query(
    query: ParsedQuery,
    records: Sequence[Mapping[str, Any]],
    types: Mapping[str, tuple[str, str]],
) -> list[dict[str, Any]]:
    """The records ``query`` selects (fields projected), in its order, within its limit.

    ``types`` maps lower-cased field names to (the field's name, its Salesforce type);
    an unknown field is a QueryError (INVALID_FIELD), as in Salesforce.
    """
    names = [*query.fields, *(c.field for c in query.where), *(o[0] for o in query.order)]
    unknown = [n for n in names if n.lower() not in types]
    if unknown:
        raise malformed(
            f"No such column '{unknown[0]}' on entity '{query.sobject}'", "INVALID_FIELD"
        )
    selected = [r for r in records if all(_matches(c, r, types) for c in query.where)]
    for given, descending, nulls_last in reversed(query.order):
        name, sf_type = types[given.lower()]
        present = [r for r in selected if _typed(r.get(name), sf_type) is not None]
        absent = [r for r in selected if _typed(r.get(name), sf_type) is None]
        present.sort(key=lambda r: _typed(r.get(name), sf_type), reverse=descending)
        selected = present + absent if nulls_last else absent + present
    if query.limit is not None:
        selected = selected[: query.limit]
    return [
        {types[n.lower()][0]: r.get(types[n.lower()][0]) for n in query.fields} for r in selected
    ]
