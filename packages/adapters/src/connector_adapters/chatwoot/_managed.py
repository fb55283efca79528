"""ManagedChatwoot: the Chatwoot client over connector-http's HttpConnector."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, ClassVar, Self

from connector_adapters.chatwoot._client import (
    PagedIterators,
    check_message_type,
    check_page,
    check_search_query,
    check_sort,
    check_toggle_status,
    new_correlation_id,
)
from connector_adapters.chatwoot._config import ChatwootConfig
from connector_adapters.chatwoot._models import (
    AssigneeType,
    ChatwootContact,
    ChatwootConversation,
    ChatwootMessage,
    ContactPage,
    ConversationPage,
    ConversationStatus,
    ConversationStatusFilter,
    FilterCondition,
    ToggleableStatus,
    ToggleStatusResult,
    parse_contact,
    parse_contact_page,
    parse_conversation_page,
    parse_model,
    validate,
)
from connector_core import (
    AuthenticationError,
    CheckResult,
    ConfigError,
    ConnectorError,
    FieldError,
    NotFoundError,
    RateLimitedError,
    RateLimitSettings,
    SerializationError,
    TokenBucket,
)
from connector_http import ApiKeyAuthConfig, HttpConfig, HttpConnector, HttpResponse

try:
    _VERSION = version("connector-adapters")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = "0.0.0"

PROFILE_PATH = "/api/v1/profile"


def _drop_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _contact_body(
    name: str | None,
    email: str | None,
    phone_number: str | None,
    identifier: str | None,
    blocked: bool | None,
    additional_attributes: Mapping[str, Any] | None,
    custom_attributes: Mapping[str, Any] | None,
    *,
    inbox_id: int | None = None,
) -> dict[str, Any]:
    """The body of a contact create or update: only the fields the caller gave."""
    return _drop_none(
        {
            "inbox_id": inbox_id,
            "name": name,
            "email": email,
            "phone_number": phone_number,
            "identifier": identifier,
            "blocked": blocked,
            "additional_attributes": None
            if additional_attributes is None
            else dict(additional_attributes),
            "custom_attributes": None if custom_attributes is None else dict(custom_attributes),
        }
    )


class ManagedChatwoot(PagedIterators):
    """Chatwoot's Application API over :class:`connector_http.HttpConnector`.

    Sends ``api_access_token`` as a header and the correlation id in
    ``config.correlation_id_header`` on every request. Two token buckets keep
    within Chatwoot's limits: every request takes from the general one
    (``requests_per_minute``), contact searches also from the search one
    (``search_requests_per_minute``). GET/PUT/DELETE are retried on transient
    errors; a 429 is retried after its ``Retry-After`` for every method (rack-attack
    rejects before the request is processed, so even a POST is safe to resend).

    Use ``async with ManagedChatwoot(config) as chatwoot:`` (or connect/disconnect).
    Raises ConfigError for an incomplete config; operations raise the ConnectorError
    subclasses listed on :class:`ChatwootClient`, AuthenticationError naming the
    ``api_access_token`` setting when Chatwoot rejects the token.
    """

    name: ClassVar[str] = "chatwoot"
    version: ClassVar[str] = _VERSION

    def __init__(self, config: ChatwootConfig) -> None:
        if config.account_id is None or config.api_access_token is None:
            missing = [n for n in ("account_id", "api_access_token") if getattr(config, n) is None]
            raise ConfigError(
                f"ManagedChatwoot needs {' and '.join(missing)} in ChatwootConfig",
                errors=[FieldError(n, "required for the managed client") for n in missing],
                connector="chatwoot",
            )
        self.config = config
        rate_limit = config.rate_limit or RateLimitSettings(
            rate=config.requests_per_minute / 60.0, burst=config.burst
        )
        self.http = HttpConnector(
            HttpConfig(
                base_url=config.base_url,
                auth=ApiKeyAuthConfig(key=config.api_access_token, name="api_access_token"),
                timeout=config.timeout,
                connect_timeout=config.connect_timeout,
                retry=config.retry,
                rate_limit=rate_limit,
                circuit_breaker=config.circuit_breaker,
                correlation_id_header=config.correlation_id_header,
                health_path=PROFILE_PATH,
                connect_probe=True,
                user_agent=f"connector-adapters/{_VERSION} (chatwoot)",
                headers={"Accept": "application/json"},
            )
        )
        self.search_limiter = TokenBucket(
            config.search_requests_per_minute / 60.0, config.search_burst
        )
        self._prefix = config.api_prefix

    def __repr__(self) -> str:
        return f"ManagedChatwoot({self.config.connection_string()!r})"

    # -- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the HTTP client (one probe request to ``/api/v1/profile``)."""
        await self._guard(self.http.connect())

    async def disconnect(self) -> None:
        await self.http.disconnect()

    @property
    def is_connected(self) -> bool:
        return self.http.is_connected

    async def ping(self) -> float:
        """GET ``/api/v1/profile`` (which proves the token); its round trip in seconds.
        Raises NotConnectedError before ``connect()``, AuthenticationError for a
        rejected token, and the connection errors of HttpConnector."""
        seconds: float = await self._guard(self.http.ping())
        return seconds

    async def check(self) -> CheckResult:
        """Connect, fetch the profile (proves the token), report; never raises."""
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
        await asyncio.shield(self.disconnect())

    # -- the road -----------------------------------------------------------------------

    async def _guard(self, call: Any) -> Any:
        try:
            return await call
        except AuthenticationError as exc:
            raise AuthenticationError(
                "Chatwoot rejected the access token: check the 'api_access_token' setting "
                f"(ChatwootConfig.api_access_token, env CHATWOOT_API_ACCESS_TOKEN) ({exc.message})",
                connector="chatwoot",
                details=exc.details,
            ) from exc

    async def _request(
        self,
        method: str,
        path: str,
        operation: str,
        correlation_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> HttpResponse:
        # GET/PUT/DELETE take the connector's rule (transient errors are retried); a
        # POST or PATCH only a 429: rack-attack refuses before the request is processed,
        # so resending it cannot apply it twice. Either way on the connector's one road.
        retry_on = _rate_limited if method in ("POST", "PATCH") else None
        response: HttpResponse = await self._guard(
            self.http.request(
                method,
                f"{self._prefix}{path}",
                params=params,
                json=json,
                correlation_id=correlation_id,
                operation=f"chatwoot.{operation}",
                retry_on=retry_on,
            )
        )
        return response

    async def _optional(self, call: Any) -> Any:
        try:
            return await call
        except NotFoundError:
            return None

    # -- contacts -----------------------------------------------------------------------

    async def list_contacts(
        self, *, page: int = 1, sort: str | None = None, correlation_id: str | None = None
    ) -> ContactPage:
        params = _drop_none({"page": check_page(page), "sort": check_sort(sort)})
        response = await self._request(
            "GET", "/contacts", "list_contacts", new_correlation_id(correlation_id), params=params
        )
        return parse_contact_page(response.json(), page=page)

    async def get_contact(
        self, contact_id: int, *, correlation_id: str | None = None
    ) -> ChatwootContact | None:
        response = await self._optional(
            self._request(
                "GET", f"/contacts/{int(contact_id)}", "get_contact",
                new_correlation_id(correlation_id),
            )
        )  # fmt: skip
        return parse_contact(response.json()) if response is not None else None

    async def search_contacts(
        self,
        q: str,
        *,
        page: int = 1,
        sort: str | None = None,
        correlation_id: str | None = None,
    ) -> ContactPage:
        params = _drop_none(
            {"q": check_search_query(q), "page": check_page(page), "sort": check_sort(sort)}
        )
        waited = await self.search_limiter.acquire()
        if waited:
            self.http.logger.debug("contact search waited %.3fs for the search limit", waited)
        response = await self._request(
            "GET", "/contacts/search", "search_contacts", new_correlation_id(correlation_id),
            params=params,
        )  # fmt: skip
        return parse_contact_page(response.json(), page=page)

    async def create_contact(
        self,
        *,
        inbox_id: int,
        name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        identifier: str | None = None,
        blocked: bool | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootContact:
        cid = new_correlation_id(correlation_id)
        body = _contact_body(
            name, email, phone_number, identifier, blocked,
            additional_attributes, custom_attributes, inbox_id=inbox_id,
        )  # fmt: skip
        response = await self._request("POST", "/contacts", "create_contact", cid, json=body)
        contact = parse_contact(response.json())
        if contact is None:
            raise _unexpected("create_contact", "no contact in the response")
        return contact

    async def update_contact(
        self,
        contact_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        identifier: str | None = None,
        blocked: bool | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootContact | None:
        """Update the given fields; Chatwoot merges ``custom_attributes`` into the old ones.

        Returns the contact as it is after the update (None when it does not exist).
        """
        cid = new_correlation_id(correlation_id)
        body = _contact_body(
            name, email, phone_number, identifier, blocked,
            additional_attributes, custom_attributes,
        )  # fmt: skip
        response = await self._optional(
            self._request("PUT", f"/contacts/{int(contact_id)}", "update_contact", cid, json=body)
        )
        if response is None:
            return None
        # The server answers 200 with the contact; the document says 204 (no body).
        contact = parse_contact(response.json()) if response.content.strip() else None
        if contact is not None:
            return contact
        return await self.get_contact(contact_id, correlation_id=cid)

    async def delete_contact(self, contact_id: int, *, correlation_id: str | None = None) -> bool:
        response = await self._optional(
            self._request(
                "DELETE", f"/contacts/{int(contact_id)}", "delete_contact",
                new_correlation_id(correlation_id),
            )
        )  # fmt: skip
        return response is not None

    async def filter_contacts(
        self,
        conditions: Sequence[FilterCondition],
        *,
        page: int = 1,
        correlation_id: str | None = None,
    ) -> ContactPage:
        payload = [
            c.model_dump(exclude_none=True, include=set(FilterCondition.model_fields))
            for c in conditions
        ]
        response = await self._request(
            "POST", "/contacts/filter", "filter_contacts", new_correlation_id(correlation_id),
            params={"page": check_page(page)}, json={"payload": payload},
        )  # fmt: skip
        return parse_contact_page(response.json(), page=page)

    # -- conversations ------------------------------------------------------------------

    async def list_conversations(
        self,
        *,
        status: ConversationStatusFilter | None = None,
        assignee_type: AssigneeType | None = None,
        inbox_id: int | None = None,
        team_id: int | None = None,
        labels: Sequence[str] | None = None,
        page: int = 1,
        correlation_id: str | None = None,
    ) -> ConversationPage:
        params = _drop_none(
            {
                "status": status,
                "assignee_type": assignee_type,
                "inbox_id": inbox_id,
                "team_id": team_id,
                "labels": list(labels) if labels else None,
                "page": check_page(page),
            }
        )
        response = await self._request(
            "GET", "/conversations", "list_conversations", new_correlation_id(correlation_id),
            params=params,
        )  # fmt: skip
        return parse_conversation_page(response.json(), page=page)

    async def get_conversation(
        self, conversation_id: int, *, correlation_id: str | None = None
    ) -> ChatwootConversation | None:
        response = await self._optional(
            self._request(
                "GET", f"/conversations/{int(conversation_id)}", "get_conversation",
                new_correlation_id(correlation_id),
            )
        )  # fmt: skip
        if response is None:
            return None
        result: ChatwootConversation = parse_model(
            ChatwootConversation, response.json(), "a conversation"
        )
        return result

    async def create_conversation(
        self,
        *,
        source_id: str,
        inbox_id: int,
        contact_id: int | None = None,
        status: ConversationStatus | None = None,
        assignee_id: int | None = None,
        team_id: int | None = None,
        message: str | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> ChatwootConversation:
        """Create a conversation; returns it as Chatwoot shows it afterwards."""
        cid = new_correlation_id(correlation_id)
        body = _drop_none(
            {
                "source_id": source_id,
                "inbox_id": inbox_id,
                "contact_id": contact_id,
                "status": status,
                "assignee_id": assignee_id,
                "team_id": team_id,
                "message": {"content": message} if message is not None else None,
                "additional_attributes": dict(additional_attributes)
                if additional_attributes is not None
                else None,
                "custom_attributes": dict(custom_attributes)
                if custom_attributes is not None
                else None,
            }
        )
        response = await self._request(
            "POST", "/conversations", "create_conversation", cid, json=body
        )
        created: ChatwootConversation = parse_model(
            ChatwootConversation, response.json(), "a created conversation"
        )
        # The create answer holds only ids; the full conversation is one GET away.
        full = await self.get_conversation(created.id, correlation_id=cid)
        return full if full is not None else created

    async def toggle_status(
        self,
        conversation_id: int,
        status: ToggleableStatus,
        *,
        correlation_id: str | None = None,
    ) -> ToggleStatusResult | None:
        check_toggle_status(status)
        response = await self._optional(
            self._request(
                "POST", f"/conversations/{int(conversation_id)}/toggle_status",
                "toggle_status", new_correlation_id(correlation_id), json={"status": status},
            )
        )  # fmt: skip
        if response is None:
            return None
        result: ToggleStatusResult = parse_model(
            ToggleStatusResult, response.json(), "a status toggle"
        )
        if result.current_status is None:
            result = result.model_copy(update={"current_status": status})
        if result.conversation_id is None:
            result = result.model_copy(update={"conversation_id": conversation_id})
        return result

    # -- messages -----------------------------------------------------------------------

    async def list_messages(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        correlation_id: str | None = None,
    ) -> list[ChatwootMessage]:
        """Latest 20 messages; ``before=<id>`` 20 older; ``after=<id>`` up to 100 newer."""
        response = await self._optional(
            self._request(
                "GET", f"/conversations/{int(conversation_id)}/messages", "list_messages",
                new_correlation_id(correlation_id),
                params=_drop_none({"before": before, "after": after}),
            )
        )  # fmt: skip
        if response is None:
            return []
        body = response.json()
        items = body.get("payload") if isinstance(body, Mapping) else body
        if not isinstance(items, list):
            raise _unexpected("list_messages", "expected a 'payload' array")
        messages = [validate(ChatwootMessage, m, "a message list") for m in items]
        return sorted(messages, key=lambda m: m.id)

    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str,
        message_type: str = "outgoing",
        private: bool = False,
        correlation_id: str | None = None,
    ) -> ChatwootMessage:
        body = {
            "content": content,
            "message_type": check_message_type(message_type),
            "private": private,
        }
        response = await self._request(
            "POST", f"/conversations/{int(conversation_id)}/messages", "create_message",
            new_correlation_id(correlation_id), json=body,
        )  # fmt: skip
        result: ChatwootMessage = parse_model(ChatwootMessage, response.json(), "a message")
        return result


def _rate_limited(error: ConnectorError) -> bool:
    return isinstance(error, RateLimitedError)


def _unexpected(operation: str, detail: str) -> ConnectorError:
    return SerializationError(
        f"unexpected Chatwoot response to {operation}: {detail}", connector="chatwoot"
    )
