"""Property tests over ChatwootConfig: whatever it is given (fields, a URL, an
environment), it raises ConfigError or builds; a built managed config connects to the
fake Chatwoot server and makes its first call, or fails with a typed, non-transient
ConnectorError (never another exception, never at construction); no
secret (api_access_token, webhook_secret) ever shows in a message, a repr, a dump or
anywhere in a chained cause."""

from __future__ import annotations

from typing import Any

from adapters_chatwoot_fake import TOKEN, FakeChatwootServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_adapters.chatwoot import ChatwootConfig, ManagedChatwoot
from connector_core import ConfigError, ConnectorError
from connector_testing import exception_texts, secret_leaks
from connector_testing.strategies import hostile_number, hostile_text, hostile_value

SECRET = "cw-Secret-Token-7f3a"
WEBHOOK_SECRET = "whsec-Secret-91bd"

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# The secrets go only where secrets belong; every other field may be shown.
token = st.one_of(
    st.sampled_from([SECRET, f"x{SECRET}y", f"{SECRET} ", f"{SECRET}\x00", f"{SECRET}é"]),
    hostile_value,
)
webhook_secret = st.one_of(
    st.sampled_from([WEBHOOK_SECRET, f"{WEBHOOK_SECRET}\ud800", f" {WEBHOOK_SECRET}"]),
    hostile_value,
)
SECRET_FIELDS = {"api_access_token", "webhook_secret"}
FIELDS = sorted(
    (set(ChatwootConfig.model_fields) - SECRET_FIELDS)
    | {"unknown", "retry.max_attempts", "rate_limit.rate"}
)


def _no_secret_anywhere(*texts: str) -> None:
    leaks = secret_leaks(texts, [SECRET, WEBHOOK_SECRET])
    assert not leaks, leaks


def _no_secret_in_error(error: BaseException) -> None:
    _no_secret_anywhere(*exception_texts(error))


def _no_secret_in_config(config: ChatwootConfig) -> None:
    _no_secret_anywhere(
        repr(config), str(config), config.model_dump_json(), str(config.model_dump()),
        config.connection_string(),
    )  # fmt: skip


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(FIELDS), hostile_value, max_size=6),
    st.fixed_dictionaries(
        {}, optional={"api_access_token": token, "webhook_secret": webhook_secret}
    ),
)
def test_any_fields_give_a_config_or_a_config_error(
    fields: dict[str, Any], secrets: dict[str, Any]
) -> None:
    try:
        config = ChatwootConfig.model_validate({**fields, **secrets})
    except ConfigError as error:
        refused = error
    else:
        _no_secret_in_config(config)
        return
    assert refused.fields, "a ConfigError names the bad fields"
    _no_secret_in_error(refused)


url_part = st.one_of(
    hostile_text, st.sampled_from(["@", ":", "/", "?", "#", "&", "=", "[::1", "%zz", "accounts"])
)


@PROPERTY
@given(st.lists(url_part, min_size=0, max_size=6).map("".join), st.sampled_from(range(4)))
def test_any_url_gives_a_config_or_a_config_error(tail: str, shape: int) -> None:
    url = [
        f"https://chat.example.com/app/accounts/{tail}?api_access_token={SECRET}",
        f"https://agent:{SECRET}@chat.example.com/{tail}",
        f"https://{tail}?webhook_secret={WEBHOOK_SECRET}&api_access_token={SECRET}",
        tail,
    ][shape]
    try:
        config = ChatwootConfig.from_url(url)
    except ConfigError as error:
        _no_secret_in_error(error)
    else:
        _no_secret_in_config(config)


env_key = st.one_of(
    st.sampled_from(
        ["BASE_URL", "ACCOUNT_ID", "MODE", "URL", "RETRY", "RETRY__MAX_ATTEMPTS", "RATE_LIMIT",
         "RATE_LIMIT__RATE", "REQUESTS_PER_MINUTE", "WEBHOOK_TOLERANCE", "TIMEOUT",
         "CORRELATION_ID_HEADER", "API_ACCESS_TOKEN__X"]
    ),
    st.text(alphabet="ABCXYZ_", max_size=8),
)  # fmt: skip
env_value = st.one_of(
    hostile_text, st.sampled_from(['{"max_attempts": 2}', "[1, 2]", "1e300", "3", "managed"])
)


@PROPERTY
@given(st.dictionaries(env_key, env_value, max_size=6), st.booleans())
def test_any_environment_gives_a_config_or_a_config_error(
    env: dict[str, str], with_secrets: bool
) -> None:
    environ = {f"CHATWOOT_{k}": v for k, v in env.items()}
    if with_secrets:
        environ |= {"CHATWOOT_API_ACCESS_TOKEN": SECRET, "CHATWOOT_WEBHOOK_SECRET": WEBHOOK_SECRET}
    try:
        config = ChatwootConfig.from_env("CHATWOOT_", environ)
    except ConfigError as error:
        _no_secret_in_error(error)
    else:
        _no_secret_in_config(config)


managed_fields = st.fixed_dictionaries(
    {"api_access_token": st.one_of(st.just(TOKEN), token)},
    optional={
        "account_id": st.one_of(st.just(1), hostile_number),
        "mode": st.sampled_from(["auto", "managed", "mock"]),
        "correlation_id_header": st.one_of(st.just("X-Request-ID"), hostile_text),
        "timeout": st.one_of(st.none(), st.floats(min_value=5, max_value=1e300), hostile_number),
        "connect_timeout": st.one_of(st.floats(min_value=5, max_value=1e300), hostile_number),
        "requests_per_minute": st.one_of(st.integers(1, 6 * 10**7), hostile_number),
        "burst": st.one_of(st.integers(1, 10**5), hostile_number),
        "search_requests_per_minute": hostile_number,
        "webhook_tolerance": hostile_number,
        "webhook_secret": webhook_secret,
        "retry": st.one_of(st.just({"max_attempts": 1}), hostile_value),
    },
)


@PROPERTY
@given(managed_fields)
async def test_a_built_managed_config_connects_or_fails_typed_and_final(
    chatwoot_server: FakeChatwootServer, fields: dict[str, Any]
) -> None:
    fake = chatwoot_server.fake
    fake.reset()
    try:
        config = ChatwootConfig.model_validate({**fields, "base_url": chatwoot_server.url})
    except ConfigError as error:
        _no_secret_in_error(error)
        return
    _no_secret_in_config(config)
    if not config.is_managed:
        return
    if (config.timeout is not None and config.timeout < 5) or config.connect_timeout < 5:
        return  # valid, but a timeout this short may rightly fail as a (transient) timeout
    client = ManagedChatwoot(config)
    failure: ConnectorError | None = None
    try:
        # connect() proves the server answers (decision 0015); the first call judges the
        # token and the account. The limiter starts full: this call never waits.
        await client.connect()
        await client.list_contacts()
    except ConnectorError as error:
        failure = error
    finally:
        await client.disconnect()
    assert not fake.violations, fake.violations
    given = config.api_access_token.get_secret_value() if config.api_access_token else None
    if given == TOKEN and config.account_id == 1:
        assert failure is None, failure
    else:
        assert failure is not None, "the fake knows one token and account 1 only"
        assert not failure.transient, failure
        _no_secret_in_error(failure)
