"""GraphQLConnector: GraphQL over an HttpConnector, with errors as ConnectorErrors and
Relay-style cursor pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from pydantic import SecretStr

from connector_core import (
    AuthenticationError,
    CheckResult,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    SerializationError,
)
from connector_http._config import VERSION, HttpConfig
from connector_http._connector import HttpConnector
from connector_http._errors import (
    GraphQLError,
    PaginationLoopError,
    error_class_for_status,
    scrub_json,
)
from connector_http._pagination import dig
from connector_http._response import HttpResponse, decode_json

# extensions.code values (Apollo, Hasura, GitHub...) that map to a specific error.
_CODE_ERRORS: dict[str, type[ConnectorError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "FORBIDDEN": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "BAD_USER_INPUT": InvalidRequestError,
    "GRAPHQL_VALIDATION_FAILED": InvalidRequestError,
    "GRAPHQL_PARSE_FAILED": InvalidRequestError,
}

# 4xx statuses that keep their plain HTTP mapping even with GraphQL errors in the body:
# they are transient and must stay retryable.
_RETRYABLE_4XX = frozenset({408, 429})


def _graphql_error_body(response: HttpResponse) -> bool:
    """Whether an error response is a GraphQL answer to map by its ``errors`` (GraphQL
    over HTTP with application/graphql-response+json, Apollo's 400s): a 4xx JSON body
    holding a non-empty ``errors`` list."""
    status = response.status
    if not 400 <= status < 500 or status in _RETRYABLE_4XX:
        return False
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        body = decode_json(response.content)
    except ValueError:  # not JSON (too deep included): the plain status error it is
        return False
    return isinstance(body, dict) and isinstance(body.get("errors"), list) and bool(body["errors"])


class GraphQLConnector:
    """A GraphQL client composed from an :class:`HttpConnector` (which it holds).

    ``query()`` and ``mutate()`` POST ``{"query", "variables", "operationName"}`` to
    ``path`` and return ``data``. A response with ``errors`` (a 200, or a 4xx other
    than 408/429 whose JSON body holds them, as GraphQL over HTTP and Apollo send)
    raises: AuthenticationError, PermissionDeniedError, NotFoundError or
    InvalidRequestError when the first error's ``extensions.code`` says so; otherwise,
    for a 4xx, the status's usual error (400 InvalidRequestError, 401
    AuthenticationError, ...); otherwise :class:`GraphQLError` (a QueryError). Every
    one of these carries ``.errors`` (every error) and ``.data`` (any partial data),
    with the connector's secrets and the call's ``user_token`` masked. Queries are
    retried like GETs (they read only); mutations are not, unless ``idempotent=True``.
    ``correlation_id`` and ``user_token`` work as in :meth:`HttpConnector.request`.
    """

    name: ClassVar[str] = "graphql"
    version: ClassVar[str] = VERSION

    def __init__(self, http: HttpConnector | HttpConfig | str, *, path: str = "/graphql") -> None:
        self.http = http if isinstance(http, HttpConnector) else HttpConnector(http)
        self.path = path

    def __repr__(self) -> str:
        return f"GraphQLConnector({self.http!r}, path={self.path!r})"

    # -- lifecycle (delegated) ----------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self.http.is_connected

    async def connect(self) -> None:
        """Connect the underlying HttpConnector."""
        await self.http.connect()

    async def disconnect(self) -> None:
        await self.http.disconnect()

    async def ping(self) -> float:
        """Ping the HttpConnector's health path."""
        return await self.http.ping()

    async def check(self) -> CheckResult:
        """The HttpConnector's check, reported under this connector's name."""
        result = await self.http.check()
        return result.model_copy(update={"connector": self.name})

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.__aexit__(exc_type, exc, tb)

    # -- operations ---------------------------------------------------------------------

    async def execute(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        idempotent: bool = False,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        user_token: str | SecretStr | None = None,
    ) -> Any:
        """Run any GraphQL document; returns ``data``. Raises as described on the class,
        plus every error of :meth:`HttpConnector.request`."""
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = dict(variables)
        if operation_name:
            payload["operationName"] = operation_name
        response = await self.http.request(
            "POST",
            self.path,
            json=payload,
            headers=headers,
            idempotent=idempotent,
            correlation_id=correlation_id,
            user_token=user_token,
            operation=f"graphql {operation_name}" if operation_name else "graphql",
            accept_error=_graphql_error_body,
        )
        body = response.json()
        if not isinstance(body, dict):
            raise SerializationError(
                f"GraphQL response is a {type(body).__name__}, not an object",
                connector=self.http.name,
            )
        errors = body.get("errors")
        if errors or response.status >= 400:
            try:
                error = self._error(errors, body.get("data"), response, user_token)
            except RecursionError:
                # Decodable, but too deep to copy with its secrets masked.
                error = None
            if error is None:
                raise SerializationError(
                    "GraphQL errors nested too deeply to report",
                    connector=self.http.name,
                    details={"status": response.status},
                )
            raise error
        return body.get("data")

    async def query(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        user_token: str | SecretStr | None = None,
    ) -> Any:
        """Run a query (retried on transient failures); returns ``data``."""
        return await self.execute(
            document, variables, operation_name=operation_name, idempotent=True,
            headers=headers, correlation_id=correlation_id, user_token=user_token,
        )  # fmt: skip

    async def mutate(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        idempotent: bool = False,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        user_token: str | SecretStr | None = None,
    ) -> Any:
        """Run a mutation (not retried unless ``idempotent=True``); returns ``data``."""
        return await self.execute(
            document, variables, operation_name=operation_name, idempotent=idempotent,
            headers=headers, correlation_id=correlation_id, user_token=user_token,
        )  # fmt: skip

    async def paginate(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        connection: str,
        cursor_variable: str = "after",
        max_pages: int | None = None,
        operation_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the nodes of a Relay connection across pages.

        ``connection`` is the dotted path of the connection inside ``data``
        (``"repository.issues"``); the document must select ``pageInfo { hasNextPage
        endCursor }`` and ``edges { node }`` or ``nodes``, and take the cursor as
        ``$after`` (or ``cursor_variable``). Stops when ``hasNextPage`` is false, a page
        is empty or after ``max_pages``; raises PaginationLoopError when ``endCursor``
        repeats.
        """
        vars_: dict[str, Any] = dict(variables or {})
        seen: set[str] = set()
        fetched = 0
        while max_pages is None or fetched < max_pages:
            data = await self.query(
                document, vars_, operation_name=operation_name, headers=headers,
                user_token=user_token,
            )  # fmt: skip
            fetched += 1
            conn = dig(data, connection)
            if not isinstance(conn, Mapping):
                raise SerializationError(
                    f"no Relay connection at data.{connection} in the GraphQL response",
                    connector=self.http.name,
                )
            if isinstance(conn.get("edges"), list):
                nodes = [e.get("node") for e in conn["edges"] if isinstance(e, Mapping)]
            else:
                nodes = list(conn.get("nodes") or [])
            for node in nodes:
                yield node
            info = conn.get("pageInfo") or {}
            cursor = info.get("endCursor")
            if not nodes or not info.get("hasNextPage") or not cursor:
                return
            if cursor in seen:
                masked = self.http.scrub(str(cursor), user_token=user_token)
                raise PaginationLoopError(
                    f"Relay pagination: the server repeated endCursor {masked!r} at page "
                    f"{fetched}; stopping instead of looping forever",
                    connector=self.http.name,
                    details={"style": "relay", "page": fetched, "marker": masked},
                )
            seen.add(cursor)
            vars_[cursor_variable] = cursor

    def _error(
        self,
        errors: Any,
        data: Any,
        response: HttpResponse,
        user_token: str | SecretStr | None,
    ) -> ConnectorError:
        def scrub_text(text: str) -> str:
            return self.http.scrub(text, user_token=user_token)

        raw = [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []
        items: list[Mapping[str, Any]] = scrub_json(raw, scrub_text)
        data = scrub_json(data, scrub_text)
        messages = [str(e.get("message", "unknown error")) for e in items] or [str(errors)]
        summary = "; ".join(messages[:5]) + (
            f" (+{len(messages) - 5} more)" if len(messages) > 5 else ""
        )
        summary = scrub_text(summary)
        status = response.status
        details: dict[str, Any] = {"errors": len(messages)}
        if status >= 400:
            details["status"] = status
        request_id = response.request_id
        if request_id:
            details["request_id"] = request_id
        first = items[0] if items else {}
        extensions = first.get("extensions")
        code = extensions.get("code") if isinstance(extensions, Mapping) else None
        cls: type[ConnectorError] | None = None
        label = ""
        if isinstance(code, str):
            details["code"] = code
            cls = _CODE_ERRORS.get(code.upper())
            label = code
        if cls is None and status >= 400:
            cls = error_class_for_status(status)
            label = f"{status} {response.reason}".rstrip()
        if cls is None:
            return GraphQLError(
                f"GraphQL errors: {summary}",
                errors=items,
                data=data,
                connector=self.http.name,
                details=details,
            )
        error = cls(f"GraphQL {label}: {summary}", connector=self.http.name, details=details)
        # Every mapped error carries what GraphQLError carries.
        vars(error).update(errors=tuple(items), data=data)
        return error
