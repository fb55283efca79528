"""Property tests over SalesforceConfig: whatever it is given (fields, a URL, an
environment), it raises ConfigError naming the bad fields or builds; no secret (private
key, client secret, refresh token) ever shows in a message, a repr, a dump, the
connection string or anywhere in a chained cause."""

from __future__ import annotations

from typing import Any

import pytest
from adapters_salesforce_fake import CLIENT_ID, USERNAME, FakeSalesforceServer
from adapters_salesforce_fake import CLIENT_SECRET as FAKE_SECRET
from adapters_salesforce_fake import REFRESH_TOKEN as FAKE_REFRESH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_adapters.salesforce import ManagedSalesforce, SalesforceConfig
from connector_core import ConfigError, ConnectorError
from connector_testing import exception_texts, secret_leaks
from connector_testing.strategies import hostile_text, hostile_value

CLIENT_SECRET = "sf-Client-Secret-8c1d"
REFRESH = "sf-Refresh-Token-55e0"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Secret"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
SECRETS = [CLIENT_SECRET, REFRESH, PEM_BODY]

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _secret(value: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([value, f"x{value}y", f"{value} ", f"{value}\x00", f"{value}é"]),
        hostile_value,
    )


pem = st.one_of(
    st.sampled_from([PEM, PEM.replace("PRIVATE", "RSA PRIVATE"), f"{PEM_BODY}", PEM + "\x00"]),
    hostile_value,
)
auth = st.one_of(
    hostile_value,
    st.fixed_dictionaries(
        {"type": st.just("jwt_bearer")},
        optional={
            "client_id": st.one_of(st.just("3MVG9client"), hostile_value),
            "username": st.one_of(st.just("api@example.com"), hostile_value),
            "private_key": pem,
            "audience": st.one_of(st.just("https://test.salesforce.com"), hostile_value),
            "assertion_lifetime": hostile_value,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("client_credentials")},
        optional={
            "client_id": st.one_of(st.just("3MVG9client"), hostile_value),
            "client_secret": _secret(CLIENT_SECRET),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["refresh_token", "password", ""])},
        optional={
            "client_id": st.one_of(st.just("3MVG9client"), hostile_value),
            "client_secret": _secret(CLIENT_SECRET),
            "refresh_token": _secret(REFRESH),
        },
    ),
)
FIELDS = sorted(
    (set(SalesforceConfig.model_fields) - {"auth"})
    | {"unknown", "retry.max_attempts", "rate_limit.rate"}
)


def _no_secret_anywhere(*texts: str) -> None:
    leaks = secret_leaks(texts, SECRETS)
    assert not leaks, leaks


def _no_secret_in_error(error: BaseException) -> None:
    _no_secret_anywhere(*exception_texts(error))


def _no_secret_in_config(config: SalesforceConfig) -> None:
    _no_secret_anywhere(
        repr(config), str(config), config.model_dump_json(), str(config.model_dump()),
        config.connection_string(), repr(config.auth),
    )  # fmt: skip


@PROPERTY
@given(st.dictionaries(st.sampled_from(FIELDS), hostile_value, max_size=6), auth)
def test_any_fields_give_a_config_or_a_config_error(fields: dict[str, Any], given: Any) -> None:
    try:
        config = SalesforceConfig.model_validate({**fields, "auth": given})
    except ConfigError as error:
        refused = error
    else:
        _no_secret_in_config(config)
        return
    assert refused.fields, "a ConfigError names the bad fields"
    _no_secret_in_error(refused)


url_part = st.one_of(
    hostile_text, st.sampled_from(["@", ":", "/", "?", "#", "&", "=", "[::1", "%zz", "auth."])
)


@PROPERTY
@given(st.lists(url_part, min_size=0, max_size=6).map("".join), st.sampled_from(range(4)))
def test_any_url_gives_a_config_or_a_config_error(tail: str, shape: int) -> None:
    url = [
        f"https://3MVG9:{CLIENT_SECRET}@acme.my.salesforce.com/{tail}",
        f"https://acme.my.salesforce.com?auth.type=refresh_token&auth.client_id=x"
        f"&auth.refresh_token={REFRESH}&{tail}",
        f"https://{tail}?auth.client_secret={CLIENT_SECRET}",
        tail,
    ][shape]
    try:
        config = SalesforceConfig.from_url(url)
    except ConfigError as error:
        _no_secret_in_error(error)
    else:
        _no_secret_in_config(config)


env_key = st.one_of(
    st.sampled_from(
        ["LOGIN_URL", "API_VERSION", "MODE", "URL", "RETRY__MAX_ATTEMPTS", "RATE_LIMIT__RATE",
         "API_USAGE_WARN_THRESHOLD", "TIMEOUT", "AUTH__TYPE", "AUTH__CLIENT_ID",
         "AUTH__USERNAME", "AUTH", "CORRELATION_ID_HEADER"]
    ),
    st.text(alphabet="ABCXYZ_", max_size=8),
)  # fmt: skip
env_value = st.one_of(
    hostile_text,
    st.sampled_from(['{"type": "jwt_bearer"}', "jwt_bearer", "client_credentials", "0.5", "3"]),
)


@PROPERTY
@given(st.dictionaries(env_key, env_value, max_size=6), st.booleans())
def test_any_environment_gives_a_config_or_a_config_error(
    env: dict[str, str], with_secrets: bool
) -> None:
    environ = {f"SALESFORCE_{k}": v for k, v in env.items()}
    if with_secrets:
        environ |= {
            "SALESFORCE_AUTH__CLIENT_SECRET": CLIENT_SECRET,
            "SALESFORCE_AUTH__REFRESH_TOKEN": REFRESH,
            "SALESFORCE_AUTH__PRIVATE_KEY": PEM,
        }
    try:
        config = SalesforceConfig.from_env("SALESFORCE_", environ)
    except ConfigError as error:
        _no_secret_in_error(error)
    else:
        _no_secret_in_config(config)


def test_every_bad_field_is_named_at_once() -> None:
    try:
        SalesforceConfig.model_validate(
            {
                "login_url": "ftp://x",
                "api_version": "62",
                "api_usage_warn_threshold": 2,
                "auth": {"type": "jwt_bearer", "client_id": "a b", "private_key": CLIENT_SECRET},
            }
        )
    except ConfigError as error:
        fields = set(error.fields)
        _no_secret_in_error(error)
    else:  # pragma: no cover
        raise AssertionError("accepted")
    assert {"login_url", "api_version", "api_usage_warn_threshold"} <= fields
    assert {f.rsplit(".", 1)[-1] for f in fields if f.startswith("auth")} == {
        "client_id", "username", "private_key",
    }  # fmt: skip


def test_client_credentials_need_my_domain() -> None:
    auth = {"type": "client_credentials", "client_id": "x", "client_secret": CLIENT_SECRET}
    with pytest.raises(ConfigError, match="My Domain") as refused:
        SalesforceConfig.model_validate({"auth": auth})
    assert refused.value.fields == ("login_url",)
    config = SalesforceConfig.model_validate(
        {"auth": auth, "login_url": "https://acme.my.salesforce.com"}
    )
    assert config.is_managed
    assert config.connection_string() == "https://acme.my.salesforce.com/services/data/v62.0"


def test_from_env_and_from_url_build_the_same_config() -> None:
    by_env = SalesforceConfig.from_env(
        "SALESFORCE_",
        {
            "SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com",
            "SALESFORCE_API_VERSION": "61.0",
            "SALESFORCE_AUTH__TYPE": "client_credentials",
            "SALESFORCE_AUTH__CLIENT_ID": "3MVG9",
            "SALESFORCE_AUTH__CLIENT_SECRET": CLIENT_SECRET,
        },
    )
    by_url = SalesforceConfig.from_url(
        f"https://3MVG9:{CLIENT_SECRET}@acme.my.salesforce.com?api_version=61.0"
    )
    assert by_env == by_url
    assert SalesforceConfig().api_version == "62.0"
    assert not SalesforceConfig().is_managed


def _managed_fields(server: FakeSalesforceServer) -> st.SearchStrategy[dict[str, Any]]:
    fake = server.fake
    good = {
        "type": "jwt_bearer", "client_id": CLIENT_ID, "username": USERNAME,
        "private_key": fake.private_key,
    }  # fmt: skip
    return st.fixed_dictionaries(
        {
            "auth": st.one_of(
                st.just(good),
                st.dictionaries(
                    st.sampled_from(["client_id", "username", "audience", "assertion_lifetime"]),
                    hostile_value,
                    max_size=2,
                ).map(lambda bad: {**good, **bad}),
                st.fixed_dictionaries(
                    {"type": st.just("client_credentials"), "client_id": st.just(CLIENT_ID)},
                    optional={
                        "client_secret": st.one_of(st.just(FAKE_SECRET), _secret(CLIENT_SECRET))
                    },
                ),
                st.fixed_dictionaries(
                    {"type": st.just("refresh_token"), "client_id": st.just(CLIENT_ID)},
                    optional={"refresh_token": st.one_of(st.just(FAKE_REFRESH), _secret(REFRESH))},
                ),
            )
        },
        optional={
            "api_version": st.one_of(st.just("61.0"), hostile_value),
            "mode": st.sampled_from(["auto", "managed", "mock"]),
            "correlation_id_header": st.one_of(st.just("X-Request-ID"), hostile_text),
            "api_usage_warn_threshold": hostile_value,
            "retry": st.one_of(st.just({"max_attempts": 1}), hostile_value),
        },
    )


@settings(PROPERTY, max_examples=60)
@given(data=st.data())
async def test_a_built_managed_config_connects_or_fails_typed_and_final(
    salesforce_server: FakeSalesforceServer, data: st.DataObject
) -> None:
    fake = salesforce_server.fake
    fake.reset()
    fields = data.draw(_managed_fields(salesforce_server))
    try:
        config = SalesforceConfig.model_validate({**fields, "login_url": fake.login_url})
    except ConfigError as error:
        _no_secret_in_error(error)
        return
    _no_secret_in_config(config)
    if not config.is_managed:
        return
    failure: ConnectorError | None = None
    client = ManagedSalesforce(config)
    try:
        await client.connect()
        await client.limits()
    except ConnectorError as error:
        failure = error
    finally:
        await client.disconnect()
    assert not fake.violations, fake.violations
    if failure is not None:
        assert not failure.transient, failure
        leaks = secret_leaks(exception_texts(failure), SECRETS)
        assert not leaks, leaks
    else:
        auth = config.auth
        assert auth is not None
        known = {"client_credentials": FAKE_SECRET, "refresh_token": FAKE_REFRESH}
        if auth.type in known:  # only the fake's own secret logs in
            secret = getattr(
                auth, "client_secret" if auth.type == "client_credentials" else "refresh_token"
            )
            assert secret.get_secret_value() == known[auth.type]
