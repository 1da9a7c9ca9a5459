"""Config and RetryPolicy: defaults, environment, validation, redaction, backoff waits."""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memories_async import Config, ConfigError, RetryPolicy
from memories_async._config import DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL, ENV_UNIQUE_ID

KEY = "sk-test-0123456789abcdef"
OTHER_KEY = "sk-test-fedcba9876543210"

# --- defaults ------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = Config(api_key=KEY)
    assert config.api_key == KEY
    assert config.base_url == DEFAULT_BASE_URL == "https://api.memories.ai"
    assert config.unique_id is None
    assert config.timeout == 60.0
    assert config.connect_timeout == 10.0
    assert config.rate is None
    assert config.max_connections == 64
    assert config.user_agent is None
    assert config.retry == RetryPolicy()


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 5
    assert policy.total_timeout == 300.0
    assert policy.initial_wait == 0.5
    assert policy.max_wait == 30.0
    assert policy.transient_attempts == 3
    assert policy.backoff is True


def test_config_is_frozen() -> None:
    config = Config(api_key=KEY)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.timeout = 5.0  # type: ignore[misc]


def test_retry_policy_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RetryPolicy().attempts = 2  # type: ignore[misc]


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Config(KEY)  # type: ignore[call-arg]


def test_replace_applies_and_validates() -> None:
    config = Config(api_key=KEY)
    changed = config.replace(timeout=5.0, unique_id="tenant")
    assert changed.timeout == 5.0
    assert changed.unique_id == "tenant"
    assert config.timeout == 60.0
    with pytest.raises(ConfigError, match="timeout"):
        config.replace(timeout=0)


# --- from_env ------------------------------------------------------------------------------------


def test_from_env_reads_every_variable() -> None:
    env = {
        ENV_API_KEY: KEY,
        ENV_BASE_URL: "http://localhost:8080/",
        ENV_UNIQUE_ID: "holiday_2025",
    }
    config = Config.from_env(env)
    assert config.api_key == KEY
    assert config.base_url == "http://localhost:8080"
    assert config.unique_id == "holiday_2025"


def test_from_env_strips_environment_values() -> None:
    config = Config.from_env({ENV_API_KEY: f"  {KEY}\n", ENV_UNIQUE_ID: " tenant "})
    assert config.api_key == KEY
    assert config.unique_id == "tenant"


def test_from_env_explicit_arguments_win() -> None:
    env = {ENV_API_KEY: KEY, ENV_BASE_URL: "http://env.test", ENV_UNIQUE_ID: "env-ns"}
    config = Config.from_env(
        env, api_key=OTHER_KEY, base_url="https://arg.test", unique_id="arg-ns"
    )
    assert config.api_key == OTHER_KEY
    assert config.base_url == "https://arg.test"
    assert config.unique_id == "arg-ns"


def test_from_env_none_override_counts_as_not_given() -> None:
    env = {ENV_API_KEY: KEY, ENV_BASE_URL: "http://env.test", ENV_UNIQUE_ID: "env-ns"}
    config = Config.from_env(env, api_key=None, base_url=None, unique_id=None, timeout=None)
    assert config.api_key == KEY
    assert config.base_url == "http://env.test"
    assert config.unique_id == "env-ns"
    assert config.timeout == 60.0


def test_from_env_passes_other_settings() -> None:
    policy = RetryPolicy(backoff=False)
    config = Config.from_env({ENV_API_KEY: KEY}, timeout=3.0, rate=2.5, retry=policy)
    assert config.timeout == 3.0
    assert config.rate == 2.5
    assert config.retry is policy


def test_from_env_defaults_when_variables_absent() -> None:
    config = Config.from_env({}, api_key=KEY)
    assert config.base_url == DEFAULT_BASE_URL
    assert config.unique_id is None


def test_from_env_ignores_empty_variables() -> None:
    config = Config.from_env({ENV_API_KEY: KEY, ENV_BASE_URL: "", ENV_UNIQUE_ID: ""})
    assert config.base_url == DEFAULT_BASE_URL
    assert config.unique_id is None


def test_from_env_refuses_unknown_setting() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        Config.from_env({ENV_API_KEY: KEY}, bogus=1)


def test_from_env_lists_every_unknown_setting() -> None:
    with pytest.raises(ConfigError, match="alpha, zeta"):
        Config.from_env({ENV_API_KEY: KEY}, zeta=1, alpha=2)


@pytest.mark.parametrize("env", [{}, {ENV_API_KEY: ""}, {ENV_API_KEY: "   "}])
def test_from_env_without_key_says_how_to_fix(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert "api_key=" in str(info.value)
    assert ENV_API_KEY in str(info.value)


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, KEY)
    monkeypatch.setenv(ENV_UNIQUE_ID, "from-os")
    monkeypatch.delenv(ENV_BASE_URL, raising=False)
    config = Config.from_env()
    assert config.api_key == KEY
    assert config.unique_id == "from-os"


def test_from_env_explicit_empty_mapping_ignores_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_API_KEY, KEY)
    with pytest.raises(ConfigError, match=ENV_API_KEY):
        Config.from_env({})


def test_from_env_validates_environment_values() -> None:
    with pytest.raises(ConfigError, match=ENV_BASE_URL):
        Config.from_env({ENV_API_KEY: KEY, ENV_BASE_URL: "api.memories.ai"})


# --- api key -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "   ", "\t\n"])
def test_missing_or_blank_key_refused(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(api_key=key)
    assert "api_key=" in str(info.value)
    assert ENV_API_KEY in str(info.value)


def test_non_string_key_refused() -> None:
    with pytest.raises(ConfigError, match=ENV_API_KEY):
        Config(api_key=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        f" {KEY}",
        f"{KEY} ",
        f"{KEY}\n",
        "sk-test-0123\t456789abcdef",
        "sk-test-0123 456789abcdef",
        "sk-test-0123\x00456789abcdef",
        "sk-test-0123\x1b456789abcdef",
    ],
)
def test_key_with_whitespace_or_control_chars_refused(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(api_key=key)
    message = str(info.value)
    assert "whitespace" in message
    assert key.strip() not in message


def test_key_with_bearer_glued_refused() -> None:
    with pytest.raises(ConfigError, match="Bearer"):
        Config(api_key=f"Bearer{KEY}")


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer "])
def test_key_with_bearer_prefix_says_drop_bearer(prefix: str) -> None:
    with pytest.raises(ConfigError, match="Bearer"):
        Config(api_key=f"{prefix}{KEY}")


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer "])
def test_key_with_bearer_prefix_refused(prefix: str) -> None:
    with pytest.raises(ConfigError):
        Config(api_key=f"{prefix}{KEY}")


def test_key_never_in_repr() -> None:
    config = Config(api_key=KEY, unique_id="tenant")
    text = repr(config)
    assert KEY not in text
    assert "0123456789abcdef" not in text
    assert "***" in text
    assert "tenant" in text
    assert KEY not in str(config)


def test_key_never_in_repr_after_replace() -> None:
    config = Config(api_key=KEY).replace(api_key=OTHER_KEY)
    assert OTHER_KEY not in repr(config)


# --- base_url ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.memories.ai", "https://api.memories.ai"),
        ("https://api.memories.ai/", "https://api.memories.ai"),
        ("http://127.0.0.1:8080///", "http://127.0.0.1:8080"),
        ("http://proxy.test/prefix/", "http://proxy.test/prefix"),
    ],
)
def test_base_url_trailing_slash_stripped(given: str, expected: str) -> None:
    assert Config(api_key=KEY, base_url=given).base_url == expected


@pytest.mark.parametrize(
    "url", ["", "api.memories.ai", "ftp://api.memories.ai", "//api.memories.ai", "https:/x"]
)
def test_base_url_without_scheme_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(api_key=KEY, base_url=url)
    assert "base_url" in str(info.value)
    assert "http://" in str(info.value)


def test_base_url_non_string_refused() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        Config(api_key=KEY, base_url=42)  # type: ignore[arg-type]


# --- unique_id -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   ", 5])
def test_unique_id_empty_or_not_string_refused(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Config(api_key=KEY, unique_id=value)
    assert "unique_id" in str(info.value)
    assert "unset" in str(info.value)


@pytest.mark.parametrize("value", [None, "default", "Holiday_2025"])
def test_unique_id_accepted(value: str | None) -> None:
    assert Config(api_key=KEY, unique_id=value).unique_id == value


# --- numeric settings ----------------------------------------------------------------------------

BAD_POSITIVE = [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, True, False, "5", [1]]


@pytest.mark.parametrize("name", ["timeout", "connect_timeout", "rate"])
@pytest.mark.parametrize("value", BAD_POSITIVE, ids=repr)
def test_positive_settings_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Config(api_key=KEY, **{name: value})
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["timeout", "connect_timeout", "rate"])
@pytest.mark.parametrize("value", [0.001, 1, 2.5, 10**6])
def test_positive_settings_accepted(name: str, value: float) -> None:
    options: dict[str, Any] = {name: value}
    assert getattr(Config(api_key=KEY, **options), name) == value


def test_rate_none_means_unlimited() -> None:
    assert Config(api_key=KEY, rate=None).rate is None


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8", None, math.nan])
def test_max_connections_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        Config(api_key=KEY, max_connections=value)


@pytest.mark.parametrize("name", ["retry.total_timeout", "retry.initial_wait", "retry.max_wait"])
@pytest.mark.parametrize("value", BAD_POSITIVE, ids=repr)
def test_retry_policy_positive_settings_refused(name: str, value: Any) -> None:
    field = name.removeprefix("retry.")
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**{field: value})
    assert repr(name) in str(info.value)


def test_retry_policy_total_timeout_none_allowed() -> None:
    assert RetryPolicy(total_timeout=None).total_timeout is None


@pytest.mark.parametrize("name", ["attempts", "transient_attempts"])
@pytest.mark.parametrize("value", [0, -3, True, 2.0, "3", None])
def test_retry_policy_counts_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"retry.{name}"):
        RetryPolicy(**{name: value})


def test_config_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Config(api_key=KEY, timeout=-1)


# --- RetryPolicy.wait_before ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_wait_before_ceiling_doubles_then_caps(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy()
    assert policy.wait_before(attempt, random=0.0) == 0.0
    assert policy.wait_before(attempt, random=0.5) == pytest.approx(ceiling / 2)
    assert policy.wait_before(attempt, random=0.999999) < ceiling
    assert policy.wait_before(attempt, random=0.999999) == pytest.approx(ceiling, rel=1e-5)


@given(
    attempt=st.integers(min_value=1, max_value=200),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    initial=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=100.0),
)
def test_wait_before_full_jitter_bounds(
    attempt: int, rand: float, initial: float, cap: float
) -> None:
    policy = RetryPolicy(initial_wait=initial, max_wait=cap)
    wait = policy.wait_before(attempt, random=rand)
    ceiling = min(cap, initial * 2.0 ** (attempt - 1))
    assert 0.0 <= wait <= ceiling
    assert wait <= cap


@given(
    attempt=st.integers(min_value=1, max_value=200),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_wait_before_without_backoff_is_zero(attempt: int, rand: float) -> None:
    assert RetryPolicy(backoff=False).wait_before(attempt, random=rand) == 0.0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://", "base_url has no host, got 'http://'"),
        ("https:///path", "base_url has no host"),
        ("http://user:s3cret-pw@api.example", "must not hold credentials"),
        ("http://:s3cret-pw@api.example", "must not hold credentials"),
        ("http://api.example:port", "not a valid URL"),
        ("http://api.example:70000", "not a valid URL"),
    ],
)
def test_a_base_url_without_a_host_or_with_credentials_is_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Config(api_key="sk-test-key", base_url=url)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("value", ["", "  ", "app\r\nX-Injected: 1", "app\t1", 3])
def test_a_user_agent_with_control_characters_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="user_agent"):
        Config(api_key=KEY, user_agent=value)  # type: ignore[arg-type]
