"""GraphQLConnector against the test server's /graphql endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import (
    AuthenticationError,
    Connector,
    InvalidRequestError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    SerializationError,
    ServiceUnavailableError,
)
from connector_http import (
    GraphQLConnector,
    GraphQLError,
    HttpConfig,
    HttpConnector,
    PaginationLoopError,
)

pytestmark = pytest.mark.integration

ITEMS_QUERY = """
query Items($first: Int!, $after: String) {
  shop { items(first: $first, after: $after) {
    edges { node { id name } cursor }
    pageInfo { hasNextPage endCursor }
  } }
}
"""


def make(server: Any) -> GraphQLConnector:
    config = HttpConfig(
        base_url=server.url,
        health_path="/health",
        retry={"max_attempts": 3, "initial_delay": 0.01},
    )
    return GraphQLConnector(HttpConnector(config), path="/graphql")


async def test_query_with_variables(server: Any, state: Any) -> None:
    async with make(server) as gql:
        data = await gql.query(
            "query Hello($name: String) { hello(name: $name) }",
            {"name": "Ada"},
            operation_name="Hello",
        )
    assert data == {"hello": "hi Ada"}
    assert gql.name == "graphql"
    assert not gql.is_connected


async def test_errors_raise_graphql_error_with_all_errors(server: Any, state: Any) -> None:
    async with make(server) as gql:
        with pytest.raises(GraphQLError) as caught:
            await gql.query("query Broken { nope }", operation_name="Broken")
    error = caught.value
    assert isinstance(error, QueryError)
    assert len(error.errors) == 2
    assert error.data == {"partial": 1}
    assert "Cannot query field 'nope'" in str(error)
    assert "second problem" in str(error)


async def test_error_code_maps_to_typed_error(server: Any, state: Any) -> None:
    async with make(server) as gql:
        with pytest.raises(AuthenticationError) as caught:
            await gql.query("query Unauth { me }", operation_name="Unauth")
    error: Any = caught.value
    assert error.details["code"] == "UNAUTHENTICATED"
    assert [e["message"] for e in error.errors] == ["login"]  # mapped errors carry them too
    assert error.data is None


@pytest.mark.parametrize(
    ("operation", "expected", "status"),
    [
        ("Http400", InvalidRequestError, 400),
        ("Http401", AuthenticationError, 401),
        ("Http400Coded", PermissionDeniedError, 400),  # extensions.code wins over the status
    ],
)
async def test_graphql_errors_in_a_4xx_body_are_mapped(
    server: Any, state: Any, operation: str, expected: type[Exception], status: int
) -> None:
    async with make(server) as gql:
        with pytest.raises(expected) as caught:
            await gql.query(f"query {operation} {{ x }}", operation_name=operation)
    error: Any = caught.value
    assert type(error) is expected
    assert f"rejected with {status}" in str(error)  # the GraphQL message, not a raw body
    assert error.errors[0]["locations"] == [{"line": 1, "column": 9}]
    assert error.data is None
    assert error.details["status"] == status
    assert state.hits[f"graphql:{operation}"] == 1


async def test_graphql_errors_in_a_429_stay_retryable(server: Any, state: Any) -> None:
    async with make(server) as gql:
        with pytest.raises(RateLimitedError):
            await gql.query("query Http429 { x }", operation_name="Http429")
    assert state.hits["graphql:Http429"] == 3  # retried like any 429


async def test_query_is_retried(server: Any, state: Any) -> None:
    async with make(server) as gql:
        data = await gql.query("query FlakyQuery { ok }", operation_name="FlakyQuery")
    assert data == {"ok": True}
    assert state.hits["graphql:FlakyQuery"] == 2  # a 503, then the retry succeeded


async def test_mutation_is_not_retried_query_is(server: Any, state: Any) -> None:
    state.mutation_fails = True
    async with make(server) as gql:
        with pytest.raises(ServiceUnavailableError):
            await gql.mutate("mutation Create { create { id } }", operation_name="Create")
        assert state.hits["graphql:Create"] == 1
        state.mutation_fails = False
        data = await gql.mutate("mutation Create { create { id } }", operation_name="Create")
    assert data == {"create": {"id": "new-1"}}


async def test_relay_pagination(server: Any, state: Any) -> None:
    async with make(server) as gql:
        nodes = [
            n["id"]
            async for n in gql.paginate(
                ITEMS_QUERY, {"first": 5}, connection="shop.items", operation_name="Items"
            )
        ]
    assert nodes == [f"n{i}" for i in range(23)]
    assert state.hits["graphql:Items"] == 5


async def test_relay_repeated_cursor_raises(server: Any, state: Any) -> None:
    async with make(server) as gql:
        with pytest.raises(PaginationLoopError):
            async for _ in gql.paginate(
                ITEMS_QUERY, {"first": 5}, connection="shop.items", operation_name="ItemsRepeat"
            ):
                pass
    assert state.hits["graphql:ItemsRepeat"] == 2


USER_TOKEN = "user-jwt-gql-4b6d8f"


@pytest.mark.parametrize(
    ("operation", "expected"),
    [("EchoAuth", GraphQLError), ("EchoAuthCoded", PermissionDeniedError)],
)
async def test_user_token_echoed_in_graphql_errors_is_masked(
    server: Any, state: Any, operation: str, expected: type[Exception]
) -> None:
    async with make(server) as gql:
        with pytest.raises(expected) as caught:
            await gql.query(
                f"query {operation} {{ whoami }}", operation_name=operation, user_token=USER_TOKEN
            )
    error: Any = caught.value
    assert "Bearer ***" in str(error)  # the server did echo it
    texts = [str(error), repr(error), str(error.details), str(error.errors), str(error.data)]
    for text in texts:
        assert USER_TOKEN not in text, text
    assert error.data == {"whoami": "Bearer ***"}


async def test_user_token_as_repeated_relay_cursor_is_masked(server: Any, state: Any) -> None:
    async with make(server) as gql:
        with pytest.raises(PaginationLoopError) as caught:
            async for _ in gql.paginate(
                ITEMS_QUERY,
                {"first": 5},
                connection="shop.items",
                operation_name="ItemsEchoCursor",
                user_token=USER_TOKEN,
            ):
                pass
    assert state.hits["graphql:ItemsEchoCursor"] == 2
    for text in (str(caught.value), repr(caught.value), str(caught.value.details)):
        assert USER_TOKEN not in text, text
    assert "Bearer ***" in str(caught.value)


async def test_ping_and_check_delegate(server: Any, state: Any) -> None:
    gql = make(server)
    assert isinstance(gql, Connector)
    assert (await gql.check()).ok
    async with gql:
        assert await gql.ping() > 0


@pytest.mark.parametrize(
    ("operation", "error", "says"),
    [
        ("Deep", SerializationError, "nested too deeply"),  # a 200 nested 100,000 levels
        ("DeepHttp400", InvalidRequestError, "400"),  # a GraphQL 400 body not decodable
        # decodable, but too deep for the recursive copy that masks secrets in errors
        ("DeepErrors", SerializationError, "GraphQL errors nested too deeply to report"),
    ],
)
async def test_deeply_nested_responses_raise_typed_errors(
    server: Any, state: Any, operation: str, error: type[Exception], says: str
) -> None:
    async with make(server) as gql:
        with pytest.raises(error, match=says) as caught:
            await gql.query(f"query {operation} {{ x }}", operation_name=operation)
    assert type(caught.value) is error
