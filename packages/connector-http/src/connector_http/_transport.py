"""The one place credentials are added to requests: a transport, as each request leaves.

A transport sees every request the client sends, each redirect hop included, with the
URL it is really going to. Adding the credentials there, only when that URL's origin is
a trusted one (``base_url``'s, plus ``trusted_origins``), keeps them from following a
redirect or an absolute URL to another host, whichever header or parameter carries them.
httpx itself strips only ``Authorization``, and only on redirects.

The request is put back as it was when the transport returns: httpx logs each request's
URL at INFO level after that, builds redirect requests from the previous request's
headers, and errors show ``response.request.url``; none of them ever holds a credential.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx

Origin = tuple[str, str, int | None]
"""(scheme, host, port) with httpx's normalisation: default ports are None."""

CREDENTIAL_EXTENSION = "connector_http.authorization"
"""``request.extensions`` key of a per-request :class:`RequestCredential`. httpx copies
a request's extensions onto its redirect requests, so every hop carries it."""


def origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port)


def trusted_origins(base_url: str, others: Iterable[str]) -> frozenset[Origin]:
    """The origins that get the credentials: ``base_url``'s and ``others``
    (``HttpConfig.trusted_origins``)."""
    return frozenset(origin_of(httpx.URL(url)) for url in (base_url, *others))


@dataclass(frozen=True, slots=True)
class RequestCredential:
    """An ``Authorization`` value for one request (an OAuth2 access token or a per-call
    user token); it replaces the configured static ``Authorization`` header."""

    authorization: str = field(repr=False)


class CredentialTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; adds ``headers`` (unless the request sets them itself), the
    request's :class:`RequestCredential` and the ``query`` parameter to requests whose
    origin is one of ``origins``, and nothing to any other request. ``owns_inner=False``
    leaves closing ``inner`` to whoever made it (a transport the user passed in)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        origins: Iterable[Origin],
        headers: Mapping[str, str] | None = None,
        query: tuple[str, str] | None = None,
        owns_inner: bool = True,
    ) -> None:
        self._inner = inner
        self._owns_inner = owns_inner
        self._origins = frozenset(origins)
        self._headers = dict(headers or {})
        self._param = None if query is None else {query[0]: query[1]}

    def trusts(self, url: httpx.URL) -> bool:
        """Whether requests to ``url`` get the credentials."""
        return origin_of(url) in self._origins

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        credential = request.extensions.get(CREDENTIAL_EXTENSION)
        if (
            not (self._headers or self._param or credential is not None)
            or origin_of(request.url) not in self._origins
        ):
            return await self._inner.handle_async_request(request)
        url, headers = request.url, request.headers
        added = headers.copy()
        for name, value in self._headers.items():
            if name not in added:
                added[name] = value
        if isinstance(credential, RequestCredential):
            added["Authorization"] = credential.authorization
        request.headers = added
        if self._param is not None:
            request.url = url.copy_merge_params(self._param)
        try:
            return await self._inner.handle_async_request(request)
        finally:
            request.url, request.headers = url, headers

    async def aclose(self) -> None:
        if self._owns_inner:
            await self._inner.aclose()
