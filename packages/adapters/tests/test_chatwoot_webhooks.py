"""Webhook signatures (valid, tampered, wrong secret, stale, unsigned) and typed parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from adapters_chatwoot_fake import AsgiServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connector_adapters.chatwoot import (
    ContactWebhook,
    ConversationWebhook,
    MessageWebhook,
    OtherWebhook,
    WebhookPayloadError,
    WebhookSignatureMismatchError,
    WebhookSignatureMissingError,
    WebhookTimestampError,
    WebhookVerificationError,
    WebhookVerifier,
    compute_signature,
    parse_webhook,
    verify_signature,
)
from connector_core import AuthenticationError, SerializationError

SECRET = "whsec-test-8d1e"
NOW = 1_763_800_000.0
BODY = json.dumps(
    {
        "event": "contact_updated",
        "id": 42,
        "name": "Ada",
        "email": None,
        "custom_attributes": {"plan": "pro"},
        "changed_attributes": [{"name": {"previous_value": "A", "current_value": "Ada"}}],
        "account": {"id": 1, "name": "Acme"},
    }
).encode()


def signed(body: bytes = BODY, *, secret: str = SECRET, ts: float = NOW) -> dict[str, str]:
    stamp = str(int(ts))
    return {
        "X-Chatwoot-Signature": compute_signature(secret, stamp, body),
        "X-Chatwoot-Timestamp": stamp,
        "X-Chatwoot-Delivery": "d-1",
    }


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"123." + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, "123", BODY) == f"sha256={expected}"


def test_valid_signature_passes() -> None:
    verify_signature(BODY, signed(), SECRET, now=lambda: NOW + 10)
    lower = {k.lower(): v for k, v in signed().items()}
    verify_signature(BODY, lower, SECRET, now=lambda: NOW)  # header names are case-insensitive


def test_tampered_body_is_rejected() -> None:
    tampered = BODY.replace(b"Ada", b"Eve")
    with pytest.raises(WebhookSignatureMismatchError, match="mismatch"):
        verify_signature(tampered, signed(), SECRET, now=lambda: NOW)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(WebhookSignatureMismatchError) as info:
        verify_signature(BODY, signed(secret="other"), SECRET, now=lambda: NOW)
    assert SECRET not in str(info.value)
    assert info.value.reason == "mismatch"


def test_tampered_timestamp_is_rejected() -> None:
    headers = signed()
    headers["X-Chatwoot-Timestamp"] = str(int(NOW) + 1)
    with pytest.raises(WebhookSignatureMismatchError):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)


@pytest.mark.parametrize("offset", [301.0, -301.0, 86_400.0])
def test_stale_or_future_timestamp_is_rejected(offset: float) -> None:
    with pytest.raises(WebhookTimestampError, match="stale") as info:
        verify_signature(BODY, signed(), SECRET, now=lambda: NOW + offset, tolerance=300)
    assert info.value.reason == "stale"


def test_tolerance_is_configurable() -> None:
    verify_signature(BODY, signed(), SECRET, now=lambda: NOW + 500, tolerance=600)
    with pytest.raises(WebhookTimestampError):
        verify_signature(BODY, signed(), SECRET, now=lambda: NOW + 500, tolerance=60)


@pytest.mark.parametrize("drop", ["X-Chatwoot-Signature", "X-Chatwoot-Timestamp"])
def test_missing_header_is_unsigned(drop: str) -> None:
    headers = signed()
    del headers[drop]
    with pytest.raises(WebhookSignatureMissingError, match=drop) as info:
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)
    assert info.value.reason == "unsigned"


def test_unsigned_request_is_rejected() -> None:
    with pytest.raises(WebhookSignatureMissingError, match="unsigned"):
        verify_signature(BODY, {"Content-Type": "application/json"}, SECRET, now=lambda: NOW)


def test_garbage_timestamp_is_rejected() -> None:
    headers = signed()
    headers["X-Chatwoot-Timestamp"] = "yesterday"
    with pytest.raises(WebhookTimestampError, match="Unix timestamp"):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)


def test_verification_errors_are_authentication_errors() -> None:
    assert issubclass(WebhookVerificationError, AuthenticationError)
    assert issubclass(WebhookPayloadError, SerializationError)


def test_verifier_parses_after_verifying_and_hides_its_secret() -> None:
    verifier = WebhookVerifier(secret=SECRET)
    event = verifier.parse(BODY, signed(), now=NOW)
    assert isinstance(event, ContactWebhook)
    assert SECRET not in repr(verifier)
    assert SECRET not in str(verifier.model_dump())
    with pytest.raises(WebhookSignatureMismatchError):
        verifier.parse(BODY + b" ", signed(), now=NOW)


def test_contact_event() -> None:
    event = parse_webhook(BODY)
    assert isinstance(event, ContactWebhook)
    contact = event.contact
    assert (contact.id, contact.name, contact.email) == (42, "Ada", None)
    assert contact.custom_attributes == {"plan": "pro"}
    assert event.account["name"] == "Acme"
    assert event.changed_attributes[0]["name"]["current_value"] == "Ada"


def test_conversation_event() -> None:
    event = parse_webhook(
        {"event": "conversation_status_changed", "id": 7, "status": "resolved",
         "labels": None, "meta": {"sender": {"id": 3}}, "new_field": 1}
    )  # fmt: skip
    assert isinstance(event, ConversationWebhook)
    conversation = event.conversation
    assert (conversation.id, conversation.status, conversation.labels) == (7, "resolved", [])
    assert conversation.contact_id == 3
    assert (event.model_extra or {})["new_field"] == 1


def test_message_event() -> None:
    event = parse_webhook(
        json.dumps(
            {"event": "message_created", "id": 9, "content": "hi", "message_type": "incoming",
             "private": False, "created_at": "2025-05-29T10:00:00.000Z",
             "conversation": {"id": 7}, "sender": {"id": 3, "type": "contact"}}
        )
    )  # fmt: skip
    assert isinstance(event, MessageWebhook)
    message = event.message
    assert (message.id, message.conversation_id, message.message_type) == (9, 7, "incoming")
    assert message.created_at is not None
    assert message.created_at.year == 2025
    assert event.sender["type"] == "contact"


def test_other_events_are_kept() -> None:
    event = parse_webhook(b'{"event": "webwidget_triggered", "event_info": {"x": 1}}')
    assert isinstance(event, OtherWebhook)
    assert event.event == "webwidget_triggered"
    assert (event.model_extra or {})["event_info"] == {"x": 1}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "no 'event'"),
        (b'{"id": 1}', "no 'event'"),
        (b'{"event": "contact_created", "id": "abc"}', "malformed"),
    ],
)
def test_bad_payloads_are_rejected(body: bytes, match: str) -> None:
    with pytest.raises(WebhookPayloadError, match=match):
        parse_webhook(body)


@pytest.mark.parametrize(
    "stamp", ["nan", "NaN", "inf", "-inf", " ", "1763800000.0", "1.7638e9", "+1763800000", "-5"]
)
def test_non_integer_or_non_finite_timestamp_is_rejected_even_when_signed(stamp: str) -> None:
    # Signed with the bad timestamp itself: only the timestamp check can refuse it (NaN
    # compares false with the tolerance, so a float() parse let it through).
    headers = {
        "X-Chatwoot-Signature": compute_signature(SECRET, stamp.strip(), BODY),
        "X-Chatwoot-Timestamp": stamp,
    }
    with pytest.raises(WebhookTimestampError, match="Unix timestamp"):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)


def test_empty_or_non_ascii_timestamp_is_a_typed_error() -> None:
    headers = signed()
    headers["X-Chatwoot-Timestamp"] = ""
    with pytest.raises(WebhookSignatureMissingError, match="X-Chatwoot-Timestamp"):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in str(int(NOW)))  # float() accepts these
    headers["X-Chatwoot-Timestamp"] = fullwidth
    with pytest.raises(WebhookTimestampError, match="Unix timestamp"):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)


# -- hostile bodies, received the way an application receives them ------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A webhook endpoint on a real socket: 204 when the verifier accepts the request,
    401 or 400 for its typed errors, and 500 (with the exception type) for anything else."""

    async def endpoint(request: Request) -> Response:
        verifier = WebhookVerifier(secret=SECRET)
        try:
            verifier.parse(await request.body(), dict(request.headers), now=NOW)
        except WebhookVerificationError as exc:
            return PlainTextResponse(exc.reason, status_code=401)
        except WebhookPayloadError:
            return PlainTextResponse("bad payload", status_code=400)
        except Exception as exc:  # what the tests below must never see
            return PlainTextResponse(type(exc).__name__, status_code=500)
        return Response(status_code=204)

    server = AsgiServer(Starlette(routes=[Route("/hooks", endpoint, methods=["POST"])]))
    server.start()
    yield server.url
    server.stop()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.post("/hooks", content=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "contact_created", "id": 1, "custom_attributes": '
        + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"event": "contact_created", "id": 1, "created_at": 1e300}',
        b'{"event": "contact_updated", "id": 1, "email": 5}',
        b'{"event": "message_created", "id": 2, "created_at": "99999999999999999999"}',
        b'{"event": "conversation_created", "id": 3, "labels": {"a": 1}}',
        b"\xff\xfe not utf-8",
    ],
    ids=["deep-attributes", "deep-body", "epoch-1e300", "email-not-text", "epoch-20-digits",
         "labels-not-a-list", "not-utf8"],
)  # fmt: skip
async def test_a_signed_hostile_body_is_a_payload_error(receiver: str, body: bytes) -> None:
    response = await _post(receiver, body, signed(body))
    assert (response.status_code, response.text) == (400, "bad payload")


async def test_a_signature_header_of_lone_surrogates_is_a_mismatch() -> None:
    # ASGI servers decode headers as latin-1, so only a caller's own str can hold these.
    headers = signed()
    headers["X-Chatwoot-Signature"] = "sha256=\udcff\ud800"
    with pytest.raises(WebhookSignatureMismatchError):
        verify_signature(BODY, headers, SECRET, now=lambda: NOW)
    with pytest.raises(ValueError, match="UTF-8"):
        verify_signature(BODY, signed(), "\ud800", now=lambda: NOW)


async def test_the_entity_of_a_parsed_event_is_already_valid(receiver: str) -> None:
    response = await _post(receiver, BODY, signed())
    assert response.status_code == 204
    event = parse_webhook(BODY)
    assert isinstance(event, ContactWebhook)
    assert event.contact.id == 42
