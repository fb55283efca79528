"""Auth against the real test server: static schemes, OAuth2 grants, token caching,
single-flight refresh, refresh-and-retry on 401, rotation callbacks, JWT bearer."""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connector_core import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    SerializationError,
    ServiceUnavailableError,
)
from connector_http import HttpConfig, HttpConnector
from connector_http._auth import require_jwt

pytestmark = pytest.mark.integration

CLIENT_ID = "client-7f3a"
CLIENT_SECRET = "csecret-9b1d2e4f6a8c"
API_KEY = "key-5c7e9a1b3d"


def make(base_url: str, auth: dict[str, Any], **kwargs: Any) -> HttpConnector:
    config = HttpConfig(
        base_url=base_url,
        auth=auth,
        health_path="/health",
        retry={"max_attempts": 3, "initial_delay": 0.01},
    )
    return HttpConnector(config, **kwargs)


def client_credentials(server_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": f"{server_url}/oauth/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **extra,
    }


async def test_basic_auth(base_url: str, state: Any) -> None:
    auth = {"type": "basic", "username": "ann", "password": "pw-1"}
    async with make(base_url, auth) as http:
        headers = (await http.get("/echo")).json()["headers"]
    assert headers["authorization"] == "Basic " + base64.b64encode(b"ann:pw-1").decode()


async def test_bearer_auth(base_url: str, state: Any) -> None:
    async with make(base_url, {"type": "bearer", "token": "tok-1"}) as http:
        headers = (await http.get("/echo")).json()["headers"]
    assert headers["authorization"] == "Bearer tok-1"


async def test_api_key_in_named_header(base_url: str, state: Any) -> None:
    auth = {"type": "api_key", "key": API_KEY, "name": "api_access_token"}
    async with make(base_url, auth) as http:
        assert (await http.get("/key")).json() == {"ok": True}
    assert state.seen_headers[-1]["api_access_token"] == API_KEY


async def test_api_key_in_query_parameter(base_url: str, state: Any) -> None:
    auth = {"type": "api_key", "key": API_KEY, "name": "api_key", "location": "query"}
    async with make(base_url, auth) as http:
        response = await http.get("/key", params={"x": "1"})
    assert response.json() == {"ok": True}
    assert state.seen_queries[-1] == {"x": "1", "api_key": API_KEY}
    assert API_KEY not in response.url


async def test_per_call_user_token_replaces_configured_auth(base_url: str, state: Any) -> None:
    async with make(base_url, {"type": "bearer", "token": "service-tok"}) as http:
        as_user = (await http.get("/echo", user_token="user-jwt-abc")).json()["headers"]
        as_service = (await http.get("/echo")).json()["headers"]
    assert as_user["authorization"] == "Bearer user-jwt-abc"
    assert as_service["authorization"] == "Bearer service-tok"


async def test_static_bearer_401_is_not_retried(base_url: str, state: Any) -> None:
    async with make(base_url, {"type": "bearer", "token": "nope"}) as http:
        with pytest.raises(AuthenticationError):
            await http.get("/protected")
    assert state.hits["api"] == 1


@pytest.mark.parametrize("client_auth", ["client_secret_post", "client_secret_basic"])
async def test_client_credentials_token_is_cached(
    server: Any, base_url: str, state: Any, client_auth: str
) -> None:
    async with make(base_url, client_credentials(server.url, client_auth=client_auth)) as http:
        for _ in range(3):
            assert (await http.get("/protected")).json() == {"ok": True}
    assert state.hits["token"] == 1
    assert state.hits["api"] == 3
    grant = state.grants[0]
    assert grant["grant_type"] == "client_credentials"
    assert ("client_secret" in grant) is (client_auth == "client_secret_post")


async def test_401_refreshes_and_retries_once(server: Any, base_url: str, state: Any) -> None:
    state.revoke_first_token = True  # the first token is rejected by the API
    async with make(base_url, client_credentials(server.url)) as http:
        response = await http.post("/protected", json={})  # POST: the refresh retry is safe
    assert response.status == 201
    assert state.hits["token"] == 2
    assert state.hits["api"] == 2


async def test_401_twice_raises_without_a_third_call(
    server: Any, base_url: str, state: Any
) -> None:
    state.api_rejects_all = True
    async with make(base_url, client_credentials(server.url)) as http:
        with pytest.raises(AuthenticationError) as caught:
            await http.get("/protected")
    assert state.hits["api"] == 2
    assert state.hits["token"] == 2
    assert caught.value.details["status"] == 401


async def test_concurrent_calls_on_expired_token_make_one_token_request(
    server: Any, base_url: str, state: Any
) -> None:
    # The first token lives 0.5 s, the next one an hour: however slow the machine, the
    # 100 calls below all need exactly one new token.
    state.lifetimes = [0.5]
    state.token_delay = 0.1  # keep the refresh in flight while the others arrive
    auth = client_credentials(server.url, refresh_margin=0)
    async with make(base_url, auth) as http:
        await http.get("/protected")
        assert state.hits["token"] == 1
        await asyncio.sleep(0.6)  # the first token has now expired (a lower bound)
        responses = await asyncio.gather(*(http.get("/protected") for _ in range(100)))
    assert all(r.status == 200 for r in responses)
    assert state.hits["token"] == 2
    assert state.hits["api"] == 101


async def test_failing_refresh_is_single_flight_too(server: Any, base_url: str, state: Any) -> None:
    state.token_status = 503
    state.token_delay = 0.5  # the failing fetch stays in flight while all callers join it
    config = HttpConfig(
        base_url=base_url,
        auth=client_credentials(server.url),
        health_path="/health",
        retry={"max_attempts": 2, "initial_delay": 0.01, "jitter": False},
        circuit_breaker=None,
    )
    async with HttpConnector(config) as http:
        results = await asyncio.gather(
            *(http.get("/protected") for _ in range(100)), return_exceptions=True
        )
    assert all(isinstance(r, ServiceUnavailableError) for r in results), results[:3]
    assert len({id(r) for r in results}) == 100  # each caller has its own error
    assert state.hits["token"] == 2  # one token request per attempt, not one per caller
    assert state.hits["api"] == 0


async def test_cancelling_the_first_caller_does_not_cancel_the_shared_fetch(
    server: Any, base_url: str, state: Any
) -> None:
    state.token_delay = 0.4
    async with make(base_url, client_credentials(server.url)) as http:
        first = asyncio.create_task(http.get("/protected"))
        await asyncio.sleep(0.1)  # the first caller has started the token request
        assert state.hits["token"] == 1
        others = [asyncio.create_task(http.get("/protected")) for _ in range(5)]
        await asyncio.sleep(0.05)
        first.cancel()
        responses = await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await first
    assert [r.status for r in responses] == [200] * 5
    assert state.hits["token"] == 1
    assert state.hits["api"] == 5


async def test_token_is_refreshed_ahead_of_expiry(server: Any, base_url: str, state: Any) -> None:
    # Valid for 60 s, refreshed 59.5 s early: the refresh is due after 0.5 s while the old
    # token is still good for about a minute, so no call can be rejected on a slow machine.
    state.lifetimes = [60]
    auth = client_credentials(server.url, refresh_margin=59.5)
    async with make(base_url, auth) as http:
        await http.get("/protected")
        await asyncio.sleep(0.6)  # inside the margin, long before expiry
        await http.get("/protected")
    assert state.hits["token"] == 2
    assert state.hits["api"] == 2  # no call was rejected: the refresh came first
    assert state.seen_headers[-1]["authorization"].startswith("Bearer at-2-")


async def test_refresh_token_rotation_calls_back(server: Any, base_url: str, state: Any) -> None:
    state.rotate_refresh = True
    state.lifetimes = [0.3]  # the first access token expires soon, the second in an hour
    rotated: list[str] = []

    async def persist(token: str) -> None:
        rotated.append(token)

    auth = {
        "type": "oauth2_refresh_token",
        "token_url": f"{server.url}/oauth/token",
        "client_id": CLIENT_ID,
        "refresh_token": "rt-initial-1a2b3c",
        "refresh_margin": 0,
    }
    async with make(base_url, auth, on_token_rotated=persist) as http:
        await http.get("/protected")
        await asyncio.sleep(0.4)
        await http.get("/protected")  # the server only accepts the rotated refresh token
    assert rotated == ["rt-rotated-1", "rt-rotated-2"]
    assert [g["refresh_token"] for g in state.grants] == ["rt-initial-1a2b3c", "rt-rotated-1"]


async def test_token_endpoint_rejection_is_authentication_error(
    server: Any, base_url: str, state: Any
) -> None:
    auth = client_credentials(server.url, client_secret="wrong-secret-77")
    async with make(base_url, auth) as http:
        with pytest.raises(AuthenticationError) as caught:
            await http.get("/protected")
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret-77" not in str(caught.value)  # the server echoed it
    assert state.hits["token"] == 1  # not retried
    assert state.hits["api"] == 0


def _rsa_pem() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


async def test_jwt_bearer_grant(server: Any, base_url: str, state: Any) -> None:
    pem, public = _rsa_pem()
    state.jwt_public_key = public
    auth = {
        "type": "oauth2_jwt_bearer",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "consumer-key-1",
        "subject": "integration@example.com",
        "private_key": pem,
    }
    async with make(base_url, auth) as http:
        assert (await http.get("/protected")).status == 200
        assert (await http.get("/protected")).status == 200
    assert state.hits["token"] == 1  # no expires_in: default lifetime applies
    claims = state.jwt_claims[0]
    assert claims["iss"] == "consumer-key-1"
    assert claims["sub"] == "integration@example.com"
    assert claims["aud"] == server.url
    assert claims["exp"] > claims["iat"]


async def test_jwt_bearer_bad_key_is_config_error(server: Any, base_url: str, state: Any) -> None:
    auth = {
        "type": "oauth2_jwt_bearer",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "c",
        "subject": "s",
        "private_key": "not-a-pem-key-secret",
    }
    async with make(base_url, auth) as http:
        with pytest.raises(ConfigError) as caught:
            await http.get("/protected")
    assert "auth.private_key" in caught.value.fields
    assert "not-a-pem-key-secret" not in str(caught.value)
    assert state.hits["token"] == 0


def test_missing_pyjwt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(ImportError, match=r"connector-http\[jwt\]"):
        require_jwt()
    config = HttpConfig(
        base_url="https://api.example.com",
        auth={
            "type": "oauth2_jwt_bearer",
            "token_url": "https://login.example.com/token",
            "client_id": "c",
            "subject": "s",
            "private_key": "k",
        },
    )
    with pytest.raises(ImportError, match=r"connector-http\[jwt\]"):
        HttpConnector(config)


def test_missing_h2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h2", None)
    with pytest.raises(ImportError, match=r"connector-http\[http2\]"):
        HttpConnector(HttpConfig(base_url="https://api.example.com", http2=True))


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, "[" * 100_000 + "]" * 100_000, SerializationError),
        (200, "<html>not json</html>", SerializationError),
        (401, "[" * 100_000 + "]" * 100_000, AuthenticationError),
        (400, '{"error": ' + "[" * 100_000 + "]" * 100_000 + "}", AuthenticationError),
    ],
    ids=["deep-200", "html-200", "deep-401", "deep-400"],
)
async def test_undecodable_token_responses_raise_typed_errors(
    server: Any, base_url: str, state: Any, status: int, body: str, error: type[Exception]
) -> None:
    state.token_answer = (status, body)
    async with make(base_url, client_credentials(server.url)) as http:
        with pytest.raises(error) as caught:
            await http.get("/protected")
    assert type(caught.value) is error
    if status >= 400:
        assert caught.value.details["status"] == status  # the refusal, not a decode failure
    assert state.hits["api"] == 0


@pytest.mark.parametrize("token", ["user-tok-8d0f\n", "user-tok-8d0f ", "", "us\u00e9r-tok-8d0f"])
async def test_a_user_token_that_cannot_be_a_header_is_refused_unsent(
    base_url: str, state: Any, token: str
) -> None:
    async with make(base_url, {"type": "none"}) as http:
        with pytest.raises(InvalidRequestError) as caught:
            await http.get("/echo", user_token=token)
        with pytest.raises(InvalidRequestError):
            async with http.stream("GET", "/echo", user_token=token):
                pass
    assert "user-tok" not in str(caught.value)
    assert state.hits["echo:GET"] == 0  # refused before anything was sent


@pytest.mark.parametrize(
    "payload",
    [
        '{"access_token": "at-\\ud800-x", "expires_in": 60}',  # a lone surrogate
        '{"access_token": "at-line\\nbreak", "expires_in": 60}',
        '{"access_token": "at-ok", "refresh_token": "rt-\\udfff"}',
    ],
    ids=["surrogate", "newline", "rotated-surrogate"],
)
async def test_a_token_that_cannot_be_sent_is_refused_at_once(
    server: Any, base_url: str, state: Any, payload: str
) -> None:
    state.token_answer = (200, payload)
    auth = {
        "type": "oauth2_refresh_token",
        "token_url": f"{server.url}/oauth/token",
        "client_id": CLIENT_ID,
        "refresh_token": "rt-initial-1a2b3c",
    }
    async with make(base_url, auth) as http:
        with pytest.raises(SerializationError, match="cannot be sent"):
            await http.get("/protected")
    assert state.hits["api"] == 0
