"""Chatwoot webhooks: verify X-Chatwoot-Signature, then parse the payload into typed events."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, TypeAdapter

from connector_adapters.chatwoot._models import (
    ChatwootContact,
    ChatwootConversation,
    ChatwootMessage,
    ChatwootModel,
    JsonDict,
)
from connector_core import AuthenticationError, SerializationError

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
DEFAULT_TOLERANCE = 300.0
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class WebhookVerificationError(AuthenticationError):
    """A webhook failed verification; ``reason`` says why (never the secret).

    Subclasses: :class:`WebhookSignatureMissingError`, :class:`WebhookSignatureMismatchError`,
    :class:`WebhookTimestampError`.
    """

    reason: str = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, connector="chatwoot")


class WebhookSignatureMissingError(WebhookVerificationError):
    """The request has no (or an empty) signature or timestamp header: it is unsigned."""

    reason = "unsigned"


class WebhookSignatureMismatchError(WebhookVerificationError):
    """The signature does not match the body: tampered, or signed with another secret."""

    reason = "mismatch"


class WebhookTimestampError(WebhookVerificationError):
    """The timestamp is not whole Unix seconds, or is further from now than the tolerance."""

    reason = "stale"


class WebhookPayloadError(SerializationError):
    """The (verified) body is not a Chatwoot webhook payload."""


def compute_signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256(secret, ``f"{timestamp}.{raw_body}"``).

    Raises ValueError for a timestamp that is not ASCII or a secret UTF-8 cannot encode.
    """
    return _signature(secret.encode("utf-8"), str(timestamp), body)


def _signature(key: bytes, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return f"sha256={hmac.new(key, message, hashlib.sha256).hexdigest()}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | SecretStr,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Callable[[], float] = time.time,
) -> None:
    """Check ``X-Chatwoot-Signature`` and ``X-Chatwoot-Timestamp`` over the raw ``body``.

    Raises WebhookSignatureMissingError (unsigned), WebhookTimestampError (not
    whole Unix seconds in ASCII digits, e.g. ``nan`` or ``inf``, or older/newer
    than ``tolerance`` seconds) or
    WebhookSignatureMismatchError (tampered body or wrong secret); ValueError for an
    empty secret or one UTF-8 cannot encode (a configuration mistake).
    """
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not key:
        raise ValueError("webhook secret must not be empty")
    try:
        key_bytes = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("webhook secret must be text that UTF-8 can encode") from None
    signature = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        missing = [
            n for n, v in ((SIGNATURE_HEADER, signature), (TIMESTAMP_HEADER, timestamp)) if not v
        ]
        raise WebhookSignatureMissingError(
            f"webhook rejected: unsigned (missing {' and '.join(missing)})"
        )
    stamp = timestamp.strip()
    # Whole seconds in ASCII digits only: float() would take "nan", "inf", "1e9" or
    # non-ASCII digits, and NaN compares false with every tolerance.
    if not _UNIX_SECONDS.fullmatch(stamp):
        raise WebhookTimestampError(
            f"webhook rejected: {TIMESTAMP_HEADER} is not a Unix timestamp (whole seconds)"
        )
    sent_at = int(stamp)
    age = now() - sent_at
    if abs(age) > tolerance:
        raise WebhookTimestampError(
            f"webhook rejected: stale timestamp ({age:.0f}s from now; tolerance {tolerance:.0f}s)"
        )
    expected = _signature(key_bytes, stamp, body)
    # surrogatepass: a header str holding lone surrogates is a mismatch, not a crash.
    given = signature.strip().encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise WebhookSignatureMismatchError(
            "webhook rejected: signature mismatch (body altered, or signed with another secret)"
        )


# -- typed events ---------------------------------------------------------------------


class _WebhookBase(ChatwootModel):
    event: str
    account: JsonDict = Field(default_factory=dict)
    changed_attributes: Any = None
    """On ``*_updated`` events: what changed, as Chatwoot sends it."""


class ContactWebhook(_WebhookBase):
    """``contact_created`` / ``contact_updated``: the contact's fields at top level."""

    event: Literal["contact_created", "contact_updated"]
    id: int

    @property
    def contact(self) -> ChatwootContact:
        return ChatwootContact.model_validate(self.model_dump(exclude={"event", "account"}))


class ConversationWebhook(_WebhookBase):
    """``conversation_created`` / ``_updated`` / ``_status_changed``."""

    event: Literal["conversation_created", "conversation_updated", "conversation_status_changed"]
    id: int

    @property
    def conversation(self) -> ChatwootConversation:
        return ChatwootConversation.model_validate(self.model_dump(exclude={"event", "account"}))


class MessageWebhook(_WebhookBase):
    """``message_created`` / ``message_updated``, with its conversation and sender."""

    event: Literal["message_created", "message_updated"]
    id: int
    conversation: JsonDict = Field(default_factory=dict)
    sender: JsonDict = Field(default_factory=dict)

    @property
    def message(self) -> ChatwootMessage:
        data = self.model_dump(exclude={"event", "account", "conversation", "sender"})
        if data.get("conversation_id") is None and "id" in self.conversation:
            data["conversation_id"] = self.conversation["id"]
        return ChatwootMessage.model_validate(data)


class OtherWebhook(_WebhookBase):
    """Any other event (``webwidget_triggered``, newer ones): fields kept as given."""


_KINDS = {
    "contact_created": "contact",
    "contact_updated": "contact",
    "conversation_created": "conversation",
    "conversation_updated": "conversation",
    "conversation_status_changed": "conversation",
    "message_created": "message",
    "message_updated": "message",
}


def _kind(value: Any) -> str:
    event = value.get("event") if isinstance(value, Mapping) else getattr(value, "event", None)
    return _KINDS.get(str(event), "other")


WebhookEvent = Annotated[
    Annotated[ContactWebhook, Tag("contact")]
    | Annotated[ConversationWebhook, Tag("conversation")]
    | Annotated[MessageWebhook, Tag("message")]
    | Annotated[OtherWebhook, Tag("other")],
    Discriminator(_kind),
]
"""A parsed webhook: ContactWebhook, ConversationWebhook, MessageWebhook or OtherWebhook."""

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(WebhookEvent)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> WebhookEvent:
    """Parse a webhook body into its typed event. Raises WebhookPayloadError.

    The event's entity (``.contact``, ``.conversation``, ``.message``) is validated
    too, so reading it later cannot fail. Verify the signature first
    (:func:`verify_signature` or :class:`WebhookVerifier`).
    """
    problem = ""
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) else dict(body)
    except RecursionError:
        problem = "webhook body is nested too deeply"
    except (TypeError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, dict()
        problem = f"webhook body is not JSON: {exc}"
    else:
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            problem = "webhook body is not a Chatwoot event (no 'event' field)"
    if problem:
        raise WebhookPayloadError(problem, connector="chatwoot")
    try:
        event: WebhookEvent = _EVENT_ADAPTER.validate_python(data)
        _entity(event)
    except ValueError as exc:
        problem = f"webhook {data['event']!r} payload is malformed: {exc}"
    except RecursionError:
        problem = f"webhook {data['event']!r} payload is nested too deeply"
    else:
        return event
    raise WebhookPayloadError(problem, connector="chatwoot")


def _entity(event: WebhookEvent) -> object:
    if isinstance(event, ContactWebhook):
        return event.contact
    if isinstance(event, ConversationWebhook):
        return event.conversation
    if isinstance(event, MessageWebhook):
        return event.message
    return None


class WebhookVerifier(BaseModel):
    """Verify-then-parse for one webhook secret.

    ``verifier.parse(body, headers)`` raises a :class:`WebhookVerificationError`
    subclass for unsigned, stale or tampered requests and WebhookPayloadError for
    a bad body. The secret never appears in its repr or errors.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    secret: SecretStr
    tolerance: float = Field(DEFAULT_TOLERANCE, gt=0)

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        verify_signature(
            body,
            headers,
            self.secret,
            tolerance=self.tolerance,
            now=(lambda: now) if now is not None else time.time,
        )

    def parse(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> WebhookEvent:
        self.verify(body, headers, now=now)
        return parse_webhook(body)
