"""A transport that adds an API key query parameter as the request leaves.

httpx logs each request's URL at INFO level after the transport returns; adding the
key here (and taking it off again) keeps it out of that log line, out of
``response.request.url`` and so out of every error message.
"""

from __future__ import annotations

import httpx


class QueryApiKeyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; adds ``name=value`` to requests for ``origin`` only."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, name: str, value: str, origin: httpx.URL
    ) -> None:
        self._inner = inner
        self._param = {name: value}
        self._origin = (origin.scheme, origin.host, origin.port)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        original = request.url
        if (original.scheme, original.host, original.port) != self._origin:
            return await self._inner.handle_async_request(request)
        request.url = original.copy_merge_params(self._param)
        try:
            return await self._inner.handle_async_request(request)
        finally:
            request.url = original

    async def aclose(self) -> None:
        await self._inner.aclose()
