"""Pagination as async iterators of items: page number, offset/limit, body cursor,
next URL in the body, and RFC 8288 Link headers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from connector_core import InvalidRequestError, SerializationError
from connector_http._config import HttpConfig
from connector_http._errors import PaginationLoopError, redact
from connector_http._response import HttpResponse
from connector_http._transport import origin_of, trusted_origins


class PageSource(Protocol):
    """What paging needs of a connector: fetch one page, mask secrets in what it says,
    the config (trusted origins, masked parameters) and the name errors carry."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> HttpConfig: ...

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        headers: Mapping[str, str] | None = ...,
        user_token: str | SecretStr | None = ...,
    ) -> HttpResponse: ...

    def scrub(self, text: str, *, user_token: str | SecretStr | None = None) -> str: ...


Items = str | Callable[[Any], Sequence[Any] | None] | None
Marker = str | Callable[[Any], Any]


def dig(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` in decoded JSON (None when any step is missing)."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def extract_items(body: Any, items: Items, response: HttpResponse) -> Sequence[Any]:
    if items is None:
        found = body
    elif isinstance(items, str):
        found = dig(body, items)
    else:
        found = items(body)
    if found is None:
        return ()
    if not isinstance(found, list | tuple):
        where = f"at {items!r}" if isinstance(items, str) else "in the body"
        raise SerializationError(
            f"{response.method} {response.url}: expected a JSON list {where}, "
            f"got {type(found).__name__}; pass items='path.to.list'",
            connector=response.connector,
        )
    return found


def _marker(body: Any, marker: Marker) -> Any:
    value = dig(body, marker) if isinstance(marker, str) else marker(body)
    return None if value in (None, "") else value


def items_digest(batch: Sequence[Any]) -> bytes:
    """A digest of a page's items: equal for the same items whatever else the body holds
    (timestamps, request ids), so a server ignoring the page parameter is caught."""
    text = json.dumps(batch, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _loop(style: str, page: int, marker: str, connector: str) -> PaginationLoopError:
    return PaginationLoopError(
        f"{style} pagination: the server repeated {marker} at page {page}; "
        "stopping instead of looping forever",
        connector=connector,
        details={"style": style, "page": page, "marker": marker},
    )


async def page_number(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    page_param: str,
    first_page: int,
    page_size: int | None,
    size_param: str,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    page = first_page
    fetched = 0
    previous: bytes | None = None  # digest of the previous page's items
    while max_pages is None or fetched < max_pages:
        query: dict[str, Any] = {**(params or {}), page_param: page}
        if page_size is not None:
            query[size_param] = page_size
        response = await conn.get(path, params=query, headers=headers, user_token=user_token)
        fetched += 1
        batch = extract_items(response.json(), items, response)
        if not batch:
            return
        digest = items_digest(batch)
        if digest == previous:
            raise _loop(
                "page number", fetched, f"the same items for {page_param}={page}", conn.name
            )
        previous = digest
        for item in batch:
            yield item
        if page_size is not None and len(batch) < page_size:
            return
        page += 1


async def offset_limit(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    limit: int,
    offset_param: str,
    limit_param: str,
    first_offset: int,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    offset = first_offset
    fetched = 0
    previous: bytes | None = None
    while max_pages is None or fetched < max_pages:
        query = {**(params or {}), offset_param: offset, limit_param: limit}
        response = await conn.get(path, params=query, headers=headers, user_token=user_token)
        fetched += 1
        batch = extract_items(response.json(), items, response)
        if not batch:
            return
        digest = items_digest(batch)
        if digest == previous:
            raise _loop("offset", fetched, f"the same items for {offset_param}={offset}", conn.name)
        previous = digest
        for item in batch:
            yield item
        if len(batch) < limit:
            return
        offset += len(batch)


async def body_cursor(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    next_cursor: Marker,
    cursor_param: str,
    first_cursor: str | None,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    cursor: Any = first_cursor
    seen: set[str] = set() if cursor is None else {str(cursor)}
    fetched = 0
    while max_pages is None or fetched < max_pages:
        query = dict(params or {})
        if cursor is not None:
            query[cursor_param] = cursor
        response = await conn.get(path, params=query, headers=headers, user_token=user_token)
        fetched += 1
        body = response.json()
        batch = extract_items(body, items, response)
        for item in batch:
            yield item
        cursor = _marker(body, next_cursor)
        if not batch or cursor is None:
            return
        key = str(cursor)
        if key in seen:
            masked = conn.scrub(key, user_token=user_token)
            raise _loop("cursor", fetched, f"cursor {masked!r}", conn.name)
        seen.add(key)


def _next_request(
    conn: PageSource,
    response: HttpResponse,
    target: Any,
    seen: set[str],
    style: str,
    page: int,
    user_token: str | SecretStr | None,
) -> str:
    if not isinstance(target, str):
        raise SerializationError(
            f"{style} pagination: the next URL is a {type(target).__name__}, not a string",
            connector=conn.name,
        )
    url = response.resolve(target)
    current = httpx.URL(response.resolve(""))
    nxt = httpx.URL(url)
    cfg = conn.config
    trusted = trusted_origins(cfg.base_url, cfg.trusted_origins)
    if origin_of(nxt) != origin_of(current) and origin_of(nxt) not in trusted:
        where = conn.scrub(redact(url, conn.config.masked_query_params), user_token=user_token)
        raise InvalidRequestError(
            f"{style} pagination: refusing to follow a next URL on another origin "
            f"({where}); add that origin to trusted_origins if the API really pages there",
            connector=conn.name,
        )
    if url in seen:
        masked = redact(url, conn.config.masked_query_params)
        raise _loop(style, page, f"URL {conn.scrub(masked, user_token=user_token)}", conn.name)
    seen.add(url)
    return url


async def _follow_urls(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    next_target: Callable[[Any, HttpResponse], str | None],
    what: str,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    """Pages linked one to the next by URL; ``next_target(body, response)`` finds the
    next one. Stops on an empty page, a missing link or ``max_pages``; a URL seen
    before raises instead of looping."""
    fetched = 0
    seen: set[str] = set()
    url: str = path
    query = params
    while max_pages is None or fetched < max_pages:
        response = await conn.get(url, params=query, headers=headers, user_token=user_token)
        fetched += 1
        if fetched == 1:
            seen.add(response.resolve(""))
        body = response.json()
        batch = extract_items(body, items, response)
        for item in batch:
            yield item
        target = next_target(body, response)
        if not batch or not target:
            return
        url = _next_request(conn, response, target, seen, what, fetched, user_token)
        query = None


def body_next_url(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    next_url: Marker,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    return _follow_urls(
        conn, path, items=items, next_target=lambda body, _: _marker(body, next_url),
        what="next URL", max_pages=max_pages, params=params, headers=headers,
        user_token=user_token,
    )  # fmt: skip


def link_header(
    conn: PageSource,
    path: str,
    *,
    items: Items,
    rel: str,
    max_pages: int | None,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    user_token: str | SecretStr | None,
) -> AsyncIterator[Any]:
    return _follow_urls(
        conn, path, items=items,
        next_target=lambda _, response: response.links.get(rel, {}).get("url"),
        what="Link header", max_pages=max_pages, params=params, headers=headers,
        user_token=user_token,
    )  # fmt: skip
