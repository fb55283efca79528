"""GraphQLConnector against the test server's /graphql endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import AuthenticationError, Connector, QueryError, ServiceUnavailableError
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
        with pytest.raises(AuthenticationError):
            await gql.query("query Unauth { me }", operation_name="Unauth")


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


async def test_ping_and_check_delegate(server: Any, state: Any) -> None:
    gql = make(server)
    assert isinstance(gql, Connector)
    assert (await gql.check()).ok
    async with gql:
        assert await gql.ping() > 0
