"""Every pagination style over more than five pages, and servers that repeat themselves."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import InvalidRequestError, QueryError, SerializationError
from connector_http import HttpConfig, HttpConnector, PaginationLoopError

pytestmark = pytest.mark.integration

ALL_IDS = list(range(53))


def make(base_url: str) -> HttpConnector:
    return HttpConnector(HttpConfig(base_url=base_url, health_path="/health"))


async def ids(iterator: Any) -> list[int]:
    return [item["id"] async for item in iterator]


async def test_page_number(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_pages("/pages", items="data", page_size=10))
    assert got == ALL_IDS
    assert state.hits["pages"] == 6
    assert [q["page"] for q in state.seen_queries[-6:]] == ["1", "2", "3", "4", "5", "6"]


async def test_page_number_stops_on_empty_page_without_page_size(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_pages("/pages", items="data"))
    assert got == ALL_IDS
    assert state.hits["pages"] == 7  # six pages of data, then the empty one


async def test_page_number_max_pages(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_pages("/pages", items="data", max_pages=2))
    assert got == list(range(20))
    assert state.hits["pages"] == 2


async def test_page_number_server_ignoring_page_raises(base_url: str, state: Any) -> None:
    # The body changes on every call (a timestamp); the items do not. max_pages only
    # bounds the test should the detection fail: it must stop at page 2.
    async with make(base_url) as http:
        with pytest.raises(PaginationLoopError) as caught:
            await ids(http.paginate_pages("/pages-stuck", items="data", max_pages=30))
    assert state.hits["pages_stuck"] == 2
    assert caught.value.details["style"] == "page number"


async def test_offset_server_ignoring_offset_raises(base_url: str, state: Any) -> None:
    seen: list[int] = []
    async with make(base_url) as http:

        async def collect() -> None:
            async for item in http.paginate_offset(
                "/offset-stuck", items="items", limit=10, max_pages=30
            ):
                seen.append(item["id"])

        with pytest.raises(PaginationLoopError) as caught:
            await collect()
    assert state.hits["offset_stuck"] == 2
    assert seen == list(range(10))  # the repeated page is not yielded again
    assert caught.value.details["style"] == "offset"
    assert "offset=10" in str(caught.value)


async def test_offset_max_pages(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_offset("/offset", limit=10, max_pages=3))
    assert got == list(range(30))
    assert state.hits["offset"] == 3


async def test_offset_limit(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_offset("/offset", limit=10))
    assert got == ALL_IDS
    assert [q["offset"] for q in state.seen_queries[1:]] == ["0", "10", "20", "30", "40", "50"]


async def test_body_cursor(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(
            http.paginate_cursor("/cursor", items="items", next_cursor="meta.next_cursor")
        )
    assert got == ALL_IDS
    assert state.hits["cursor"] == 6
    assert "cursor" not in state.seen_queries[1]  # [0] is the connect probe


async def test_body_cursor_max_pages(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(
            http.paginate_cursor(
                "/cursor", items="items", next_cursor="meta.next_cursor", max_pages=2
            )
        )
    assert got == list(range(20))
    assert state.hits["cursor"] == 2


async def test_body_cursor_repeated_raises(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        seen: list[int] = []

        async def collect() -> None:
            async for item in http.paginate_cursor(
                "/cursor-repeat", items="items", next_cursor="meta.next_cursor"
            ):
                seen.append(item["id"])

        with pytest.raises(PaginationLoopError) as caught:
            await collect()
    assert isinstance(caught.value, QueryError)
    assert not caught.value.transient
    assert "'abc'" in str(caught.value)
    assert state.hits["cursor_repeat"] == 3
    assert seen == list(range(30))  # each page once, then the stop


async def test_next_url_in_body(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(
            http.paginate_next_url("/next-url", items="records", next_url="nextRecordsUrl")
        )
    assert got == ALL_IDS
    assert state.hits["next_url"] == 6


async def test_next_url_max_pages(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(
            http.paginate_next_url(
                "/next-url", items="records", next_url="nextRecordsUrl", max_pages=4
            )
        )
    assert got == list(range(40))
    assert state.hits["next_url"] == 4


async def test_next_url_repeated_raises(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        with pytest.raises(PaginationLoopError) as caught:
            await ids(
                http.paginate_next_url(
                    "/next-url-repeat", items="records", next_url="nextRecordsUrl"
                )
            )
    assert state.hits["next_url_repeat"] == 2
    assert "/v1/next-url-repeat?p=2" in caught.value.details["marker"]


async def test_next_url_on_another_origin_is_refused(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        with pytest.raises(InvalidRequestError, match="another origin"):
            await ids(
                http.paginate_next_url(
                    "/next-url-foreign", items="records", next_url="nextRecordsUrl"
                )
            )
    assert state.hits["next_url_foreign"] == 1


async def test_link_header(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_links("/links"))
    assert got == ALL_IDS
    assert state.hits["links"] == 6


async def test_link_header_repeated_raises(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        with pytest.raises(PaginationLoopError):
            await ids(http.paginate_links("/links-repeat"))
    assert state.hits["links_repeat"] == 2


async def test_link_header_max_pages(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(http.paginate_links("/links", max_pages=5))
    assert got == list(range(50))
    assert state.hits["links"] == 5


async def test_items_path_that_is_not_a_list_raises(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        with pytest.raises(SerializationError, match="expected a JSON list"):
            await ids(http.paginate_pages("/pages", items="page"))


async def test_items_callable(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        got = await ids(
            http.paginate_cursor(
                "/cursor",
                items=lambda body: body["items"],
                next_cursor=lambda body: body["meta"]["next_cursor"],
            )
        )
    assert got == ALL_IDS
