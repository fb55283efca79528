"""HttpResponse and HttpStreamResponse: typed, light views over httpx responses."""

from __future__ import annotations

import asyncio
import datetime
import json as _json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import httpx

from connector_core import ConnectorError, SerializationError
from connector_http._errors import ResponseTooLargeError, redact, request_id_of

T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""``HttpConfig.max_response_bytes``'s default: 32 MiB (decision 0046)."""

DEFAULT_MAX_ERROR_BODY_BYTES = 64 * 1024
"""``HttpConfig.max_error_body_bytes``'s default: 64 KiB (decision 0046)."""


class JsonNestingError(ValueError):
    """JSON nested deeper than the interpreter's recursion limit lets it be decoded."""


def decode_json(content: bytes | str) -> Any:
    """``content`` decoded as JSON. Every failure is a ValueError: invalid JSON, bytes
    that are not UTF-8, or nesting too deep to decode (json's RecursionError, which
    would otherwise escape every ``except ValueError``)."""
    try:
        return _json.loads(content)
    except RecursionError:
        pass
    # Raised here, not in the except block: no RecursionError chained to it.
    raise JsonNestingError("nested too deeply")


def json_failure(exc: ValueError) -> str:
    """A short reason for a :func:`decode_json` failure, for messages."""
    return str(exc) if isinstance(exc, JsonNestingError) else type(exc).__name__


async def read_capped(
    response: httpx.Response, limit: int, *, partial: bool = True
) -> tuple[bytes, bool]:
    """Read ``response``'s decoded body up to ``limit`` bytes, then close it: returns
    (the bytes, whether the body went on). The rest is never downloaded. With
    ``partial=False`` nothing is returned for a body that goes on (and nothing joined).

    Decoded bytes are counted chunk by chunk as httpx's own ``aread()`` joins them, so
    the count costs nothing; a gzip body is judged by what it inflates to (each network
    read of at most 64 KiB inflates to at most ~66 MB with deflate's 1032:1 ceiling).
    """
    chunks: list[bytes] = []
    size = 0
    more = False
    iterator = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    try:
        async for chunk in iterator:
            size += len(chunk)
            if size > limit:
                more = True
                if not partial:
                    chunks.clear()
                    break
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            chunks.append(chunk)
    finally:
        await iterator.aclose()
        await response.aclose()
    return b"".join(chunks), more


async def read_body(
    response: httpx.Response, limit: int, *, connector: str, masked_params: Iterable[str]
) -> bytes:
    """The whole decoded body; raises ResponseTooLargeError beyond ``limit`` bytes."""
    body, more = await read_capped(response, limit, partial=False)
    if more:
        request = response.request
        raise too_large(
            request.method, request.url, response.status_code, limit,
            connector=connector, masked_params=masked_params,
        )  # fmt: skip
    return body


def too_large(
    method: str,
    url: httpx.URL,
    status: int,
    limit: int,
    *,
    connector: str,
    masked_params: Iterable[str],
) -> ResponseTooLargeError:
    """The error for a body beyond ``max_response_bytes``."""
    shown = redact(url, masked_params)
    return ResponseTooLargeError(
        f"{method} {shown}: the response body is larger than max_response_bytes "
        f"({limit:,} bytes, decoded); reading stopped there. Page it, read it with "
        "stream(), or raise max_response_bytes",
        connector=connector,
        details={"limit": limit, "status": status, "method": method, "url": shown},
    )


class _SentRequest:
    """What :class:`Received` says of its request (httpx.Request's ``method``, ``url``)."""

    __slots__ = ("method", "url")

    def __init__(self, method: str, url: httpx.URL) -> None:
        self.method = method
        self.url = url


class Received:
    """A successful response read straight from aiohttp (decision 0090), with what
    :class:`HttpResponse` reads of an ``httpx.Response``; the rest is built only if
    asked for (the request, ``elapsed`` as a timedelta, the headers, the encoding, the
    links)."""

    __slots__ = (
        "_headers", "_method", "_raw", "_request", "_seconds", "_url", "_view",
        "reason_phrase", "status_code",
    )  # fmt: skip

    http_version = "HTTP/1.1"

    def __init__(
        self,
        status: int,
        reason: str,
        raw_headers: Sequence[tuple[bytes, bytes]],
        method: str,
        url: httpx.URL,
        seconds: float,
    ) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self._raw = raw_headers
        self._headers: httpx.Headers | None = None
        self._method = method
        self._url = url
        self._request: _SentRequest | None = None
        self._seconds = seconds
        self._view: httpx.Response | None = None

    @property
    def request(self) -> _SentRequest:
        if self._request is None:
            self._request = _SentRequest(self._method, self._url)
        return self._request

    @property
    def elapsed(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self._seconds)

    @property
    def headers(self) -> httpx.Headers:
        if self._headers is None:
            self._headers = httpx.Headers(list(self._raw))
        return self._headers

    def _as_httpx(self) -> httpx.Response:
        if self._view is None:
            self._view = httpx.Response(self.status_code, headers=self.headers)
        return self._view

    @property
    def encoding(self) -> str | None:
        return self._as_httpx().encoding

    @property
    def links(self) -> dict[str | None, dict[str, str]]:
        return self._as_httpx().links


class HttpResponse:
    """A successful (status < 400) response whose body has been read.

    ``status``, ``headers`` (case-insensitive), ``content`` (bytes), ``text``,
    ``json()``, ``elapsed`` (seconds), ``request_id`` (from the first of the config's
    ``request_id_headers`` present), ``method``, ``url`` (redacted) and ``links``
    (RFC 8288 ``Link`` header, by rel).
    """

    __slots__ = ("_content", "_masked", "_request_id_headers", "_response", "connector")

    def __init__(
        self,
        response: httpx.Response | Received,
        *,
        content: bytes | None = None,
        connector: str = "http",
        request_id_headers: Iterable[str] = (),
        masked_params: Iterable[str] = (),
    ) -> None:
        self._response = response
        # The connector reads bodies itself (within max_response_bytes) and passes them.
        if content is None:
            assert isinstance(response, httpx.Response)  # a Received always comes with it
            content = response.content
        self._content = content
        self._request_id_headers = request_id_headers
        self._masked = masked_params
        self.connector = connector

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def reason(self) -> str:
        return self._response.reason_phrase

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def text(self) -> str:
        """The body decoded with the response's charset (UTF-8 when it names none)."""
        return self._content.decode(self._response.encoding or "utf-8", "replace")

    @property
    def elapsed(self) -> float:
        """Seconds from sending the request to reading the whole body."""
        return self._response.elapsed.total_seconds()

    @property
    def request_id(self) -> str | None:
        return request_id_of(self._response.headers, self._request_id_headers)

    @property
    def method(self) -> str:
        return self._response.request.method

    @property
    def url(self) -> str:
        """The request URL with credentials masked."""
        return redact(self._response.request.url, self._masked)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header parsed by relation (``links["next"]["url"]``)."""
        return {str(k): v for k, v in self._response.links.items()}

    def resolve(self, url: str) -> str:
        """``url`` (relative or absolute) resolved against this response's request URL."""
        return str(self._response.request.url.join(url))

    @property
    def http_version(self) -> str:
        return self._response.http_version

    def json(self) -> Any:
        """The body decoded as JSON. Raises SerializationError when it is not JSON."""
        try:
            return decode_json(self._content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, JsonNestingError
            raise SerializationError(
                f"{self.method} {self.url}: response body is not valid JSON ({json_failure(exc)})",
                connector=self.connector,
                details={"status": self.status, "url": self.url},
            ) from exc

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {self.method} {self.url}>"


class HttpStreamResponse:
    """A response whose body is read in chunks (see :meth:`HttpConnector.stream`).

    Iterate ``aiter_bytes()`` / ``aiter_text()`` / ``aiter_lines()``; transport
    failures while reading raise ConnectorError (ConnectionFailedError,
    ConnectorTimeoutError), and so does the stream's overall deadline passing
    (ConnectorTimeoutError). The body cannot be retried once reading has begun.
    """

    __slots__ = ("_deadline", "_deadline_error", "_response", "_to_error", "request_id")

    def __init__(
        self,
        response: httpx.Response,
        to_error: Callable[[BaseException], ConnectorError],
        request_id: str | None,
        *,
        deadline: float | None = None,
        deadline_error: Callable[[], ConnectorError] | None = None,
    ) -> None:
        """``deadline``: event loop time (``loop.time()``) by which the body must have
        been read; past it, reading raises ``deadline_error()``."""
        self._response = response
        self._to_error = to_error
        self.request_id = request_id
        self._deadline = deadline
        self._deadline_error = deadline_error

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    @property
    def num_bytes_downloaded(self) -> int:
        return self._response.num_bytes_downloaded

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        return self._read(self._response.aiter_bytes(chunk_size))

    def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        return self._read(self._response.aiter_text(chunk_size))

    def aiter_lines(self) -> AsyncIterator[str]:
        return self._read(self._response.aiter_lines())

    async def _read(self, source: AsyncIterator[T]) -> AsyncIterator[T]:
        iterator = cast(AsyncGenerator[T, None], source)
        try:
            while True:
                # Each read, not the loop, runs under the deadline: the caller's own work
                # between chunks is never cancelled, it only uses up the time left.
                scope = asyncio.timeout_at(self._deadline)
                expired = None
                try:
                    async with scope:
                        item = await anext(iterator)
                except StopAsyncIteration:
                    return
                except httpx.HTTPError as exc:
                    raise self._to_error(exc) from exc
                except TimeoutError:
                    if not scope.expired() or self._deadline_error is None:
                        raise
                    expired = self._deadline_error
                if expired is not None:  # raised here, after the block: nothing chained
                    raise expired()
                yield item
        finally:
            await iterator.aclose()

    def __repr__(self) -> str:
        return f"<HttpStreamResponse {self.status}>"
