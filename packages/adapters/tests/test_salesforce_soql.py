"""The SOQL builder binds values so that no caller string changes a query: literals are
escaped exactly, identifiers are checked, and the mock's parser (the documented subset)
reads every bound value back as the same value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_adapters.salesforce import (
    Like,
    MockSalesforce,
    Soql,
    format_soql,
    soql_identifier,
    soql_literal,
)
from connector_adapters.salesforce._mock_soql import parse_soql
from connector_core import InvalidRequestError, QueryError
from connector_testing.strategies import hostile_text


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ("x' OR Name != '", r"'x\' OR Name != \''"),
        ("\\'", r"'\\\''"),
        ('say "hi"\n', r"'say \"hi\"\n'"),
        ("100%_sure", "'100%_sure'"),
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (Decimal("12.50"), "12.50"),
        (1.5, "1.5"),
        (date(2024, 2, 29), "2024-02-29"),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "2024-05-01T12:00:00Z"),
        (datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
         "2024-05-01T12:00:00.123Z"),
        (["a", "b'"], r"('a', 'b\'')"),
        ((1, 2), "(1, 2)"),
        (Like.contains("50%_off"), r"'%50\%\_off%'"),
        (Like.starts_with("O'B"), r"'O\'B%'"),
    ],
)  # fmt: skip
def test_literals_are_escaped_exactly(value: object, literal: str) -> None:
    assert soql_literal(value) == literal


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 5, 1),  # naive: which timezone?
        float("nan"),
        Decimal("Infinity"),
        [],
        [["nested"]],
        "nul\x00",
        "\ud800",
        object(),
        b"bytes",
    ],
)
def test_values_soql_cannot_hold_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequestError):
        soql_literal(value)


@pytest.mark.parametrize(
    "name",
    ["Name; DELETE", "Name FROM User", "1Name", "", "Name--", "Na'me", "a" * 81, "A..B", None],
)
def test_identifiers_are_checked(name: object) -> None:
    with pytest.raises(InvalidRequestError):
        soql_identifier(name)
    with pytest.raises(InvalidRequestError):
        Soql("Account").select(name)  # type: ignore[arg-type]


def test_good_identifiers_pass() -> None:
    for name in ("Id", "Custom_Field__c", "Account.Owner.Name", "ns__Obj__r"):
        assert soql_identifier(name) == name


def test_the_builder_writes_the_query() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC)
    query = (
        Soql("Contact")
        .select("Id", "Email", "Account.Name")
        .where("Email", "LIKE", Like.ends_with("@example.com"))
        .where("SystemModstamp", ">", since)
        .where("Id", "NOT IN", ["003A", "003B"])
        .order_by("SystemModstamp")
        .order_by("Id")
        .limit(200)
    )
    assert str(query) == (
        "SELECT Id, Email, Account.Name FROM Contact WHERE Email LIKE '%@example.com' AND "
        "SystemModstamp > 2024-01-01T00:00:00Z AND Id NOT IN ('003A', '003B') "
        "ORDER BY SystemModstamp ASC, Id ASC LIMIT 200"
    )
    assert str(Soql("Account").count().where("Name", "=", "a")) == (
        "SELECT COUNT() FROM Account WHERE Name = 'a'"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Soql("Account").select("Id").where("Id", "IN", "001"), "takes a list"),
        (lambda: Soql("Account").select("Id").where("Id", "=", ["001"]), "takes a value"),
        (lambda: Soql("Account").select("Id").where("Id", "OR 1=1", 1), "unknown SOQL operator"),
        (lambda: Soql("Account").select("Id").where("Id", "=", Like.contains("x")), "LIKE"),
        (lambda: Soql("Account").select("Id").limit(0), "LIMIT"),
        (lambda: Soql("Account").build(), "at least one field"),
    ],
)
def test_the_builder_refuses_misuse(call: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        call()  # type: ignore[operator]


def test_format_soql_binds_placeholders_outside_quotes_only() -> None:
    soql = format_soql(
        "SELECT Id FROM Account WHERE Name = :name AND Note__c != ':name' AND Id IN :ids",
        name="a'b",
        ids=["1", "2"],
    )
    assert soql == (
        r"SELECT Id FROM Account WHERE Name = 'a\'b' AND Note__c != ':name' AND Id IN ('1', '2')"
    )
    with pytest.raises(InvalidRequestError, match=":missing has no value"):
        format_soql("SELECT Id FROM Account WHERE Name = :missing")
    with pytest.raises(InvalidRequestError, match=r"without a placeholder.*typo"):
        format_soql("SELECT Id FROM Account WHERE Name = :name", name="a", typo="b")


INJECTIONS = [
    "' OR Name != '",
    "\\' OR Name != \\'",
    "x\\",
    "x\\\\' OR Id != null OR Name = '",
    "'; DELETE FROM Account; --",
    "%",
    "_",
    "' LIMIT 1",
    "\n' OR '1'='1",
]


@pytest.mark.parametrize("attack", INJECTIONS)
async def test_injection_attempts_match_only_themselves(attack: str) -> None:
    mock = MockSalesforce()
    mock.seed("Account", [{"Name": attack}, {"Name": "victim"}, {"Name": "x"}])
    soql = format_soql("SELECT Name FROM Account WHERE Name = :name", name=attack)
    assert [r["Name"] async for r in mock.query(soql)] == [attack]
    like = str(Soql("Account").select("Name").where("Name", "LIKE", Like.contains(attack)))
    assert [r["Name"] async for r in mock.query(like)] == [attack]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.one_of(hostile_text, st.text()))
def test_any_text_bound_reads_back_as_itself(text: str) -> None:
    try:
        literal = soql_literal(text)
    except InvalidRequestError:
        return  # control characters and lone surrogates are refused, never pasted
    parsed = parse_soql(f"SELECT Name FROM Account WHERE Name = {literal}")
    assert parsed.where[0].value.value == text
    assert len(parsed.where) == 1


def test_the_mock_refuses_soql_beyond_its_subset() -> None:
    for soql in (
        "SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
        "SELECT Account.Name FROM Contact",
        "SELECT COUNT(Id) FROM Account",
        "SELECT Id FROM Account GROUP BY Name",
        "DELETE FROM Account",
    ):
        with pytest.raises(QueryError):
            parse_soql(soql)
