"""HttpResponse and HttpStreamResponse: typed, light views over httpx responses."""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx

from connector_core import ConnectorError, SerializationError
from connector_http._errors import redact, request_id_of


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


class HttpResponse:
    """A successful (status < 400) response whose body has been read.

    ``status``, ``headers`` (case-insensitive), ``content`` (bytes), ``text``,
    ``json()``, ``elapsed`` (seconds), ``request_id`` (from the first of the config's
    ``request_id_headers`` present), ``method``, ``url`` (redacted) and ``links``
    (RFC 8288 ``Link`` header, by rel).
    """

    __slots__ = ("_masked", "_request_id_headers", "_response", "connector")

    def __init__(
        self,
        response: httpx.Response,
        *,
        connector: str = "http",
        request_id_headers: Iterable[str] = (),
        masked_params: Iterable[str] = (),
    ) -> None:
        self._response = response
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
        return self._response.content

    @property
    def text(self) -> str:
        return self._response.text

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
            return decode_json(self._response.content)
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
    ConnectorTimeoutError). The body cannot be retried once reading has begun.
    """

    __slots__ = ("_response", "_to_error", "request_id")

    def __init__(
        self,
        response: httpx.Response,
        to_error: Callable[[BaseException], ConnectorError],
        request_id: str | None,
    ) -> None:
        self._response = response
        self._to_error = to_error
        self.request_id = request_id

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    @property
    def num_bytes_downloaded(self) -> int:
        return self._response.num_bytes_downloaded

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise self._to_error(exc) from exc

    async def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        try:
            async for chunk in self._response.aiter_text(chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise self._to_error(exc) from exc

    async def aiter_lines(self) -> AsyncIterator[str]:
        try:
            async for line in self._response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self._to_error(exc) from exc

    def __repr__(self) -> str:
        return f"<HttpStreamResponse {self.status}>"
