"""An httpx transport over one long-lived aiohttp session: the HTTP/1.1 default.

httpx keeps building requests and responses (redirect rules, decoding, the credential
transport of decision 0043, ``MockTransport`` for users' tests); only the wire is
aiohttp's, whose pool costs far less per request than httpcore's (decision 0090).

aiohttp's failures leave this transport as the httpx exceptions httpcore raises for
the same event, so ``transport_error`` maps both roads to the same ConnectorError
classes: a reset is a ``ReadError`` (transient), a connect timeout a ``ConnectTimeout``,
a read timeout a ``ReadTimeout``, a bad certificate a ``ConnectError`` caused by the
``ssl.SSLCertVerificationError`` (not retried). Bodies are passed on undecoded
(``auto_decompress=False``): httpx inflates them chunk by chunk, so
``max_response_bytes`` still judges a gzip body by what it inflates to.
"""

from __future__ import annotations

import datetime
import io
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
import yarl

_LARGE_BODY = 2**20  # aiohttp.payload.TOO_LARGE_BYTES_BODY

CHUNK_SIZE = 64 * 1024
"""Largest chunk handed to httpx per read: what httpcore reads per socket read."""


def _message(exc: BaseException) -> str:
    # ClientResponseError's str() quotes the request URL (with its query: an API key,
    # maybe); its message alone says what went wrong.
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.message or type(exc).__name__
    return str(exc) or type(exc).__name__


@contextmanager
def mapped(request: httpx.Request, *, reading: bool = False) -> Iterator[None]:
    """aiohttp's exceptions as the httpx exceptions httpcore raises for the same event.
    ``reading``: the response headers are in, so a timeout is a read timeout."""
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:
        # Chained to the ssl error itself, as httpcore's is: a bad certificate is final.
        raise httpx.ConnectError(_message(exc), request=request) from exc.certificate_error
    except aiohttp.ClientSSLError as exc:
        raise httpx.ConnectError(_message(exc), request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, DNS, unreachable
        raise httpx.ConnectError(_message(exc), request=request) from exc
    except aiohttp.ConnectionTimeoutError as exc:  # connect, or waiting for the pool
        raise httpx.ConnectTimeout(_message(exc), request=request) from exc
    except aiohttp.ServerTimeoutError as exc:  # sock_read: headers or body too slow
        raise httpx.ReadTimeout(_message(exc), request=request) from exc
    except TimeoutError as exc:
        kind = httpx.ReadTimeout if reading else httpx.ConnectTimeout
        raise kind(_message(exc), request=request) from exc
    except aiohttp.ClientPayloadError as exc:  # body cut short: a reset mid-body
        raise httpx.RemoteProtocolError(_message(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:  # closed before or while answering
        raise httpx.RemoteProtocolError(_message(exc), request=request) from exc
    except aiohttp.ClientOSError as exc:  # reset, broken pipe
        raise httpx.ReadError(_message(exc), request=request) from exc
    except aiohttp.ClientResponseError as exc:  # unparsable status line or headers
        raise httpx.RemoteProtocolError(_message(exc), request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(_message(exc), request=request) from exc
    except aiohttp.ClientConnectionError as exc:
        raise httpx.ReadError(_message(exc), request=request) from exc
    except ValueError as exc:  # aiohttp refusing a header value (CR/LF), as h11 does
        if reading:
            raise
        raise httpx.LocalProtocolError(_message(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream; closing it before the end closes
    the connection (the rest is never downloaded), at the end returns it to the pool."""

    def __init__(
        self, response: aiohttp.ClientResponse, request: httpx.Request, started: float
    ) -> None:
        self._response = response
        self._request = request
        self._started = started
        self.owner: httpx.Response | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        with mapped(self._request, reading=True):
            while chunk := await content.read(CHUNK_SIZE):
                yield chunk

    async def aclose(self) -> None:
        if self.owner is not None:
            # As httpx's client does (a direct dispatch skips it): sent to read, whole.
            self.owner.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._started)
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests over one ``aiohttp.ClientSession``, created on first use
    (it needs the running loop) and closed by :meth:`aclose`.

    ``ssl_context``: verification, CA bundle and client certificate, as built for
    httpx. ``max_connections`` bounds the pool (None: unbounded); idle connections are
    closed after ``keepalive_expiry`` seconds. HTTP/1.1 only, no proxy: the connector
    keeps httpcore for HTTP/2 and proxies.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._ssl = ssl_context
        self._limit = max_connections or 0  # aiohttp: 0 is no limit
        self._keepalive = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        # Sent with every request unless the request names them (the httpx client's
        # default headers, which every httpx request carries anyway): set before first
        # use, so the connector's direct path sends only a request's own (decision 0138).
        self.default_headers: tuple[tuple[str, str], ...] = ()

    def _open(self) -> aiohttp.ClientSession:
        kwargs: dict[str, Any] = {}
        if self._keepalive is not None:
            kwargs["keepalive_timeout"] = self._keepalive
        connector = aiohttp.TCPConnector(
            ssl=self._ssl, limit=self._limit, limit_per_host=0, **kwargs
        )
        self._session = session = aiohttp.ClientSession(
            connector=connector,
            # httpx decodes (counting the inflated size); redirects are the connector's;
            # the proxy and the environment were decided when this transport was chosen.
            auto_decompress=False,
            trust_env=False,
            # httpx sends its own User-Agent, Accept and Accept-Encoding.
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=self.default_headers or None,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{url.scheme}://'.", request=request
            )
        session = self.session()
        started = time.perf_counter()
        try:
            body: Any = request.content or None
            if body is not None and len(body) > _LARGE_BODY:
                # aiohttp warns (an error under -W error) that writing a large bytes body
                # at once may block the loop; a BytesIO is written in chunks.
                body = io.BytesIO(body)
        except httpx.RequestNotRead:  # a streamed upload: aiohttp sends it chunked
            body = request.stream
            request.headers.pop("transfer-encoding", None)
        with mapped(request):
            response = await session.request(
                request.method,
                yarl.URL(str(url), encoded=True),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=client_timeout(request.extensions.get("timeout") or {}),
            )
        return wrap(response, request, started)

    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use."""
        return self._session or self._open()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def client_timeout(
    timeout: dict[str, float | None], *, deadline: float | None = None
) -> aiohttp.ClientTimeout:
    """httpx's timeouts (the request's ``timeout`` extension) as aiohttp's: the pool wait
    and the connect share aiohttp's ``connect``, ``read`` is per socket read.

    ``deadline``: the seconds within which every read of the request happens (the
    connector's per-attempt deadline, which starts before the request is sent). A
    ``read`` at least that long can never expire first, so it is left out: aiohttp's
    per-read timer costs two timer handles per request (decision 0098)."""
    connect, pool, read = timeout.get("connect"), timeout.get("pool"), timeout.get("read")
    if read is not None and deadline is not None and read >= deadline:
        read = None
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


def wrap(
    response: aiohttp.ClientResponse, request: httpx.Request, started: float
) -> httpx.Response:
    """``response`` (headers read, body not) as an httpx response to ``request``."""
    extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
    if response.reason:
        extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
    stream = _Body(response, request, started)
    stream.owner = result = httpx.Response(
        response.status,
        headers=response.raw_headers,
        stream=stream,
        request=request,
        extensions=extensions,
    )
    return result
