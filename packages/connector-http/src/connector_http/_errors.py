"""HTTP failures as connector_core errors: status codes, transport errors, Retry-After."""

from __future__ import annotations

import email.utils
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connector_core import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    SerializationError,
    ServiceUnavailableError,
    redact_url,
    scrub_secrets,
    secret_forms,
)

MASK = "***"

_QUOTED_BYTES = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')

# Reset headers give either seconds from now or a Unix time; anything above this is a time.
_EPOCH_THRESHOLD = 1_000_000_000


class PaginationLoopError(QueryError):
    """The server repeated a cursor, a next URL or a whole page: paging would never end.

    ``details`` holds ``style`` (the pagination style), ``page`` (the page number at
    which the repeat was seen) and ``marker`` (the repeated cursor or redacted URL).
    Not transient: the same request would loop again.
    """


class ResponseTooLargeError(SerializationError):
    """A response body was larger than ``max_response_bytes`` (counted decoded, so a
    compressed body cannot hide its size): reading stopped there and the rest was not
    downloaded.

    ``details`` holds ``limit`` (bytes), ``status``, ``method`` and ``url`` (redacted).
    Not transient: the same request would bring the same body. Page the resource, read
    it with :meth:`HttpConnector.stream` (constant memory, no size limit) or raise
    ``max_response_bytes``.
    """


class GraphQLError(QueryError):
    """A GraphQL response carried ``errors``. ``errors`` holds them (message, path,
    extensions) and ``data`` any partial data the server still returned."""

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        data: Any = None,
        connector: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, connector=connector, details=details)
        self.errors: tuple[Mapping[str, Any], ...] = tuple(errors)
        self.data = data


def parse_retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` (seconds or an HTTP date)
    or, failing that, ``RateLimit-Reset`` / ``X-RateLimit-Reset`` (seconds, or a Unix time
    when the number is that large). None when no header says."""
    current = time.time() if now is None else now
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - current)
    for name in ("ratelimit-reset", "x-ratelimit-reset", "x-rate-limit-reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value.strip().split(",")[0])
        except ValueError:
            continue
        if number > _EPOCH_THRESHOLD:
            number = number - current
        return max(0.0, number)
    return None


def redact(url: str | httpx.URL, masked_params: Iterable[str] = ()) -> str:
    """``url`` without its password and with credential-like query values masked
    (including the names in ``masked_params``, compared case-insensitively)."""
    text = redact_url(str(url))
    names = {n.lower() for n in masked_params}
    if not names:
        return text
    parts = urlsplit(text)
    if not parts.query:
        return text
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in names for k, _ in pairs):
        return text
    query = urlencode([(k, MASK if k.lower() in names else v) for k, v in pairs])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def scrub_json(value: Any, scrub_text: Callable[[str], str]) -> Any:
    """A copy of decoded JSON with ``scrub_text`` applied to every string (keys too)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {scrub_text(str(k)): scrub_json(v, scrub_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(v, scrub_text) for v in value]
    return value


def request_id_of(headers: httpx.Headers, names: Iterable[str]) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return str(value)
    return None


def _trimmed_body(
    content: bytes, encoding: str | None, limit: int, secrets: Sequence[str], *, cut: bool
) -> str:
    """The start of a body, secrets masked, whitespace collapsed, at most ``limit``
    characters (then "..."). ``cut``: ``content`` is only the start of the body."""
    if limit <= 0:
        return ""
    window = limit * 4
    cut = cut or len(content) > window
    try:
        text = content[:window].decode(encoding or "utf-8", "replace")
    except LookupError:
        text = content[:window].decode("utf-8", "replace")
    # Masked before it is cut: a secret the cut went through would show its first part.
    text = scrub_secrets(text, secrets)
    if cut:
        # The same holds at the end of what was decoded: drop what could be the start of
        # a secret that goes on beyond it.
        longest = max((len(f) for s in secrets if s for f in secret_forms(s)), default=1)
        text = text[: max(0, len(text) - longest + 1)]
    text = " ".join(text.split())
    return text if len(text) <= limit and not cut else text[:limit] + "..."


_STATUS_ERRORS: dict[int, type[ConnectorError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    406: InvalidRequestError,
    409: ConflictError,
    410: NotFoundError,
    412: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def error_class_for_status(status: int) -> type[ConnectorError]:
    """The ConnectorError subclass an HTTP error status maps to."""
    cls = _STATUS_ERRORS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServiceUnavailableError
    if status == 408:
        return ConnectorTimeoutError
    return InvalidRequestError


def status_error(
    response: httpx.Response,
    *,
    body: bytes,
    body_cut: bool = False,
    connector: str,
    masked_params: Iterable[str],
    secrets: Sequence[str],
    request_id_headers: Iterable[str],
    body_limit: int,
) -> ConnectorError:
    """The typed error for an HTTP error response, with secret-free details. ``body`` is
    what was read of its body (``body_cut``: not all of it)."""
    request = response.request
    status = response.status_code
    method = request.method
    url = redact(request.url, masked_params)
    request_id = request_id_of(response.headers, request_id_headers)
    shown = _trimmed_body(body, response.encoding, body_limit, secrets, cut=body_cut)
    cls = error_class_for_status(status)
    retry_after = parse_retry_after(response.headers) if status in (429, 503) else None
    reason = response.reason_phrase or ""
    message = f"{method} {url} returned {status} {reason}".rstrip()
    if request_id:
        message += f" (request id {request_id})"
    if shown:
        message += f": {shown}"
    details: dict[str, Any] = {"status": status, "method": method, "url": url}
    if request_id:
        details["request_id"] = request_id
    if shown:
        details["body"] = shown
    return cls(
        scrub_secrets(message, secrets),
        connector=connector,
        retry_after=retry_after,
        details=details,
    )


def _has_cause(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def transport_error(
    exc: BaseException, *, connector: str, masked_params: Iterable[str]
) -> ConnectorError | None:
    """The typed error for an httpx exception (None for anything else)."""
    if not isinstance(exc, httpx.HTTPError):
        return None
    details: dict[str, Any] = {}
    where = ""
    if isinstance(exc, httpx.RequestError):
        try:
            request = exc.request
        except RuntimeError:
            request = None
        if request is not None:
            url = redact(request.url, masked_params)
            details = {"method": request.method, "url": url}
            where = f"{request.method} {url}: "
    text = str(exc) or type(exc).__name__
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ConnectorTimeoutError(
            f"{where}{kind} ({text})" if str(exc) else f"{where}{kind}",
            connector=connector,
            details=details,
        )
    if isinstance(exc, httpx.ConnectError) and _has_cause(exc, ssl.SSLCertVerificationError):
        return ConnectionFailedError(
            f"{where}TLS certificate verification failed ({text}); trust the server's CA "
            "with tls.ca_bundle",
            connector=connector,
            transient=False,
            details=details,
        )
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)):
        return ConnectionFailedError(
            f"{where}{kind} ({text})", connector=connector, details=details
        )
    if isinstance(exc, httpx.DecodingError):
        return SerializationError(f"{where}{kind} ({text})", connector=connector, details=details)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        # h11 quotes the header value it refuses (b'...'): a credential, maybe.
        text = _QUOTED_BYTES.sub("<value>", text)
        return InvalidRequestError(f"{where}{kind} ({text})", connector=connector, details=details)
    if isinstance(exc, httpx.TooManyRedirects):
        return InvalidRequestError(f"{where}{text}", connector=connector, details=details)
    return ConnectorError(f"{where}{kind} ({text})", connector=connector, details=details)
