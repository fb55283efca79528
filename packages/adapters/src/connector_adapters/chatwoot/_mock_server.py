"""A mock Chatwoot over real HTTP: a :class:`MockChatwoot` behind Chatwoot's REST routes,
served by aiohttp on 127.0.0.1, for demos and offline development of code that uses
:class:`ManagedChatwoot`. The test suite's contract fake answers through the same
:func:`answer`, and checks every answer against Chatwoot's OpenAPI document."""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from connector_adapters.chatwoot._config import ChatwootConfig
from connector_adapters.chatwoot._mock import MockChatwoot
from connector_adapters.chatwoot._models import (
    ChatwootContact,
    ChatwootConversation,
    ChatwootMessage,
    FilterCondition,
)

_ACCOUNT = r"/api/v1/accounts/(?P<account_id>[^/]+)"
ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(f"^{pattern}$"))
    for name, pattern in (
        ("profile", "/api/v1/profile"),
        ("contacts", _ACCOUNT + "/contacts"),
        ("contacts/search", _ACCOUNT + "/contacts/search"),
        ("contacts/filter", _ACCOUNT + "/contacts/filter"),
        ("contacts/{id}", _ACCOUNT + "/contacts/(?P<id>[^/]+)"),
        ("conversations", _ACCOUNT + "/conversations"),
        ("conversations/{id}", _ACCOUNT + "/conversations/(?P<conversation_id>[^/]+)"),
        (
            "conversations/{id}/toggle_status",
            _ACCOUNT + "/conversations/(?P<conversation_id>[^/]+)/toggle_status",
        ),
        (
            "conversations/{id}/messages",
            _ACCOUNT + "/conversations/(?P<conversation_id>[^/]+)/messages",
        ),
    )
)
_CONTACT_FIELDS = frozenset(
    {"inbox_id", "name", "email", "phone_number", "identifier", "blocked",
     "additional_attributes", "custom_attributes"}
)  # fmt: skip
_NULLABLE_CONTACT = frozenset({"email", "phone_number", "identifier", "last_activity_at"})
_MESSAGE_CODES = {"incoming": 0, "outgoing": 1, "activity": 2}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the mock answers: a status and a JSON body (None: no body)."""

    status: int
    body: Any = None


def _drop_none(data: Mapping[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None or k in keep}


def contact_list_item(contact: ChatwootContact) -> dict[str, Any]:
    """A contact as Chatwoot lists it (``contact_list_item``)."""
    # The attributes go out as stored: pydantic serializes at most 255 levels deep, and
    # Chatwoot (jsonb, Ruby's JSON) sends deeper ones.
    attributes = ("additional_attributes", "custom_attributes")
    data = contact.model_dump(mode="json", exclude=set(attributes))
    data.update({name: getattr(contact, name) for name in attributes})
    data["availability_status"] = data.get("availability_status") or "offline"
    data["thumbnail"] = data.get("thumbnail") or ""
    inboxes = []
    for ci in data.get("contact_inboxes") or []:
        inbox = _drop_none(ci.get("inbox") or {}, frozenset({"provider"}))
        inboxes.append(_drop_none({"source_id": ci.get("source_id"), "inbox": inbox}))
    data["contact_inboxes"] = inboxes
    return _drop_none(data, _NULLABLE_CONTACT)


def document_contact(contact: ChatwootContact) -> dict[str, Any]:
    """The document's ``contact`` item: no nulls at all, inbox shape of ``inbox_contact``."""
    data = _drop_none(contact_list_item(contact))
    data["contact_inboxes"] = [
        {**ci, "inbox": _drop_none(ci.get("inbox", {}))} for ci in data["contact_inboxes"]
    ]
    return data


def conversation_item(conv: ChatwootConversation) -> dict[str, Any]:
    data = _drop_none(conv.model_dump(mode="json"))
    meta = dict(data.get("meta") or {})
    if "sender" in meta:
        meta["sender"] = _drop_none(meta["sender"])
    data["meta"] = meta
    data["messages"] = [message_item(m) for m in conv.messages]
    return data


def message_item(message: ChatwootMessage) -> dict[str, Any]:
    data = _drop_none(message.model_dump(mode="json"))
    if data.get("message_type") in _MESSAGE_CODES:
        data["message_type"] = _MESSAGE_CODES[data["message_type"]]
    else:
        data.pop("message_type", None)
    return data


def route(path: str) -> tuple[str, dict[str, str]] | None:
    """The route name and path parameters of ``path``; None for a path it does not serve."""
    for name, pattern in ROUTES:
        match = pattern.match(path)
        if match:
            return name, match.groupdict()
    return None


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"description": message, "errors": [{"message": message}]})


async def answer(
    backend: MockChatwoot,
    *,
    token: str,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: Any,
) -> Answer | None:
    """Answer one request the way Chatwoot does, from ``backend``: None for a route it does
    not serve. ``headers`` have lower-case names; a request without ``api_access_token``
    equal to ``token`` gets Chatwoot's 401."""
    found = route(path)
    if found is None:
        return None
    name, params = found
    method = method.lower()
    if headers.get("api_access_token") != token:
        return _error(401, "Invalid Access Token")
    if params.get("account_id") not in (None, str(backend.account_id)):
        # Chatwoot's answer when the token's user is not a member of the account.
        return _error(401, "You are not authorized to access this account")
    values: dict[str, list[str]] = {}
    for key, value in query:
        values.setdefault(key, []).append(value)

    def get(key: str) -> str | None:
        return values[key][0] if key in values else None

    def number(key: str) -> int | None:
        value = get(key)
        return int(value) if value is not None else None

    page = number("page") or 1
    cid = headers.get("x-correlation-id")
    b = backend

    def contacts_list(result: Any) -> Answer:
        return Answer(
            200,
            {
                "meta": {"count": result.count or 0, "current_page": str(result.page)},
                "payload": [contact_list_item(c) for c in result.contacts],
            },
        )

    def not_found(what: str) -> Answer:
        return Answer(404, {"description": f"{what} not found"})

    if name == "profile":
        return Answer(
            200,
            {"id": b.user_id, "name": "Agent", "email": "agent@example.com",
             "account_id": b.account_id, "role": "administrator"},
        )  # fmt: skip
    if name == "contacts" and method == "get":
        return contacts_list(await b.list_contacts(page=page, sort=get("sort"), correlation_id=cid))
    if name == "contacts/search":
        q = (get("q") or "").strip()
        if not q:
            return Answer(422, {"description": "Specify search string with parameter q"})
        return contacts_list(
            await b.search_contacts(q, page=page, sort=get("sort"), correlation_id=cid)
        )
    if name == "contacts/filter" and method == "post":
        conditions = [FilterCondition.model_validate(c) for c in body.get("payload", [])]
        return contacts_list(await b.filter_contacts(conditions, page=page, correlation_id=cid))
    if name == "contacts" and method == "post":
        fields = {k: v for k, v in body.items() if k in _CONTACT_FIELDS}
        contact = await b.create_contact(**fields, correlation_id=cid)
        return Answer(
            200,
            {"id": contact.id, "availability_status": "offline",
             "payload": [document_contact(contact)]},
        )  # fmt: skip
    if name == "contacts/{id}":
        contact_id = int(float(params["id"]))
        if method == "get":
            found_contact = await b.get_contact(contact_id, correlation_id=cid)
            if found_contact is None:
                return not_found("Contact")
            return Answer(200, {"payload": contact_list_item(found_contact)})
        if method == "put":
            updated = await b.update_contact(contact_id, **body, correlation_id=cid)
            return Answer(204) if updated else not_found("Contact")
        if method == "delete":
            deleted = await b.delete_contact(contact_id, correlation_id=cid)
            return Answer(200) if deleted else not_found("Contact")
    if name == "conversations" and method == "get":
        result = await b.list_conversations(
            status=get("status"),  # type: ignore[arg-type]
            assignee_type=get("assignee_type"),  # type: ignore[arg-type]
            inbox_id=number("inbox_id"),
            team_id=number("team_id"),
            labels=values.get("labels") or None,
            page=page,
            correlation_id=cid,
        )
        return Answer(
            200,
            {"data": {"meta": result.counts,
                      "payload": [conversation_item(c) for c in result.conversations]}},
        )  # fmt: skip
    if name == "conversations" and method == "post":
        conv = await b.create_conversation(
            source_id=body["source_id"],
            inbox_id=body["inbox_id"],
            contact_id=body.get("contact_id"),
            status=body.get("status"),
            assignee_id=body.get("assignee_id"),
            team_id=body.get("team_id"),
            message=(body.get("message") or {}).get("content"),
            additional_attributes=body.get("additional_attributes"),
            custom_attributes=body.get("custom_attributes"),
            correlation_id=cid,
        )
        return Answer(
            200, {"id": conv.id, "account_id": conv.account_id, "inbox_id": conv.inbox_id}
        )
    if name == "conversations/{id}" and method == "get":
        found_conv = await b.get_conversation(int(params["conversation_id"]), correlation_id=cid)
        return (
            Answer(200, conversation_item(found_conv)) if found_conv else not_found("Conversation")
        )
    if name == "conversations/{id}/toggle_status" and method == "post":
        toggled = await b.toggle_status(
            int(params["conversation_id"]), body["status"], correlation_id=cid
        )
        if toggled is None:
            return not_found("Conversation")
        payload = _drop_none(toggled.model_dump(mode="json"))
        if payload.get("current_status") not in ("open", "resolved"):
            payload.pop("current_status", None)  # the document's enum lacks 'pending'
        return Answer(200, {"meta": {}, "payload": payload})
    if name == "conversations/{id}/messages":
        conv_id = int(params["conversation_id"])
        if conv_id not in b.conversations:
            return not_found("Conversation")
        if method == "get":
            messages = await b.list_messages(
                conv_id, before=number("before"), after=number("after"), correlation_id=cid
            )
            return Answer(
                200, {"meta": {"labels": []}, "payload": [message_item(m) for m in messages]}
            )
        if method == "post":
            message = await b.create_message(
                conv_id,
                content=body["content"],
                message_type=body.get("message_type", "outgoing"),
                private=bool(body.get("private", False)),
                correlation_id=cid,
            )
            return Answer(200, message_item(message))
    return None


@dataclass
class MockChatwootServer:
    """Serve ``backend`` (a :class:`MockChatwoot`) over HTTP on ``host`` (127.0.0.1) and a
    free port, in the running event loop::

        async with MockChatwootServer(backend) as server:
            async with ManagedChatwoot(server.config()) as chatwoot:
                ...

    Requests need the ``api_access_token`` header equal to ``token`` (generated when not
    given). ``requests`` counts the requests answered."""

    backend: MockChatwoot = field(default_factory=MockChatwoot)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    requests: int = 0
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the mock Chatwoot server is not started")
        return f"http://{self.host}:{self.port}"

    def config(self, **overrides: Any) -> ChatwootConfig:
        """A :class:`ChatwootConfig` for :class:`ManagedChatwoot` that points here."""
        return ChatwootConfig.model_validate(
            {"base_url": self.url, "account_id": self.backend.account_id,
             "api_access_token": self.token, **overrides}
        )  # fmt: skip

    async def start(self) -> str:
        """Listen, and return the base URL."""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # Our own socket, so the port the OS picked for port 0 is known.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        self._runner = runner
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return web.json_response({"description": "the body is not JSON"}, status=400)
        result = await answer(
            self.backend,
            token=self.token,
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        self.requests += 1
        if result is None:
            return web.json_response({"description": "not found"}, status=404)
        if result.body is None:
            return web.Response(status=result.status)
        return web.json_response(result.body, status=result.status)
