"""Configuration: explicit arguments, then the environment, then defaults, frozen once.

Configuration flows one way: a :class:`Config` is built (directly, or by
:meth:`Config.from_env`), validated as a whole, and handed to the components
that need it. Nothing reads the environment later.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import ConfigError
from ._ratestore import check_store_url, quota_key, redact_url

DEFAULT_BASE_URL = "https://api.memories.ai"
API_PREFIX = "/serve/api/v1/"

ENV_API_KEY = "MEMORIES_API_KEY"
ENV_BASE_URL = "MEMORIES_BASE_URL"
ENV_UNIQUE_ID = "MEMORIES_UNIQUE_ID"
ENV_RATE_STORE = "MEMORIES_RATE_STORE"


def _positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name!r} must be a number, got {type(value).__name__}")
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{name!r} must be > 0, got {value!r}")

    return check


def _count(name: str, minimum: int) -> Any:
    def check(_inst: object, _attr: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name!r} must be a whole number, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{name!r} must be >= {minimum}, got {value}")

    return check


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to retry a call that failed with a retryable error.

    A call is tried at most ``attempts`` times and never past ``total_timeout``
    seconds from its start (time spent waiting for the rate governor
    included). Between attempts the client waits a random time between 0 and
    ``min(max_wait, initial_wait * 2 ** (attempt - 1))`` (exponential backoff
    with full jitter), or the server's ``Retry-After`` when it sends one.
    Rate-limit answers are not failures: they wait for the next free slot
    of the client's governor, never use up ``attempts``, and are retried for
    as long as ``total_timeout`` allows (``None``: for ever). Code
    ``"0001"``, which the service uses both for bad input and for passing
    faults, is tried at most ``transient_attempts`` times.

    ``backoff=False`` is for tests: it removes the back-off between attempts
    and the governor's adaptive rate. An explicit ``rate`` and a server's
    ``Retry-After`` still apply, to every attempt.

    A client waits, and measures ``total_timeout``, on the clock and sleep of
    its :class:`RateGovernor`, and draws the jitter from the governor's random.
    """

    attempts: int = attrs.field(default=5, validator=_count("retry.attempts", 1))
    total_timeout: float | None = attrs.field(
        default=300.0, validator=_positive("retry.total_timeout")
    )
    initial_wait: float = attrs.field(default=0.5, validator=_positive("retry.initial_wait"))
    max_wait: float = attrs.field(default=30.0, validator=_positive("retry.max_wait"))
    transient_attempts: int = attrs.field(
        default=3, validator=_count("retry.transient_attempts", 1)
    )
    backoff: bool = True

    def wait_before(self, attempt: int, *, random: float) -> float:
        """Seconds to wait before try number ``attempt + 1``, given a ``random`` in [0, 1)."""
        if not self.backoff:
            return 0.0
        ceiling = min(self.max_wait, self.initial_wait * 2.0 ** (attempt - 1))
        return ceiling * random


MAX_API_KEY_LENGTH = 1024
"""Longest API key accepted: a longer one is a file read by mistake, not a key."""


def _check_api_key(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable"
        )
    if len(value) > MAX_API_KEY_LENGTH:
        raise ConfigError(
            f"the API key is {len(value):,} characters long, more than {MAX_API_KEY_LENGTH:,}:"
            " check its source"
        )
    if value.strip().lower().startswith("bearer"):
        raise ConfigError("the API key is sent raw: drop the 'Bearer ' prefix")
    if value != value.strip() or any(c in value for c in "\r\n\t ") or not value.isprintable():
        raise ConfigError("the API key holds whitespace or control characters; check its source")


def _check_base_url(_inst: object, _attr: object, value: str) -> None:
    where = f"(set it with base_url=... or {ENV_BASE_URL})"
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must start with http:// or https://, got {value!r} {where}")
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"base_url is not a valid URL ({exc}) {where}") from None
    if parts.username is not None or parts.password is not None:
        # Never shown: what comes before the @ may be a password.
        raise ConfigError(
            "base_url must not hold credentials (user:password@...): the API key goes in"
            f" {ENV_API_KEY} {where}"
        )
    if not host:
        raise ConfigError(f"base_url has no host, got {value!r} {where}")


def _check_unique_id(_inst: object, _attr: object, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "unique_id must be a non-empty string: leave it unset to use the"
            f" service's default namespace (or unset {ENV_UNIQUE_ID})"
        )


def _check_user_agent(_inst: object, _attr: object, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ConfigError(
            "user_agent must be a non-empty string without line breaks or control"
            f" characters, got {value!r}"
        )


def _check_rate_store(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        check_store_url(value)


def _check_rate_name(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        quota_key("", "", value)


def _redacted_url(value: str | None) -> str:
    return repr(None if value is None else redact_url(value))


def _strip_slash(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the validator says what is wrong with it
    stripped = value.rstrip("/")
    return value if stripped.endswith(":") else stripped  # "http://" stays as it was


def _redacted(_value: str) -> str:
    return "'***'"


@attrs.frozen(kw_only=True)
class Config:
    """Every setting of a client, validated and frozen.

    Build it directly, or with :meth:`from_env` to fill what is not given from
    ``MEMORIES_API_KEY``, ``MEMORIES_BASE_URL``, ``MEMORIES_UNIQUE_ID`` and
    ``MEMORIES_RATE_STORE``.
    The API key never appears in ``repr()``.

    ``timeout`` bounds one attempt, ``connect_timeout`` the connection part of
    it, ``retry.total_timeout`` a whole call with its retries. ``rate`` is the
    account's quota in requests per second: the client paces at it and never
    above (``None``: the client finds the quota by itself). ``burst`` is how
    many requests may go at once after an idle time (1: none, what a strict
    quota allows). ``rate_store`` is where the pacing state lives:
    ``memory://`` (``None``, the default) in the client, or a Redis URL
    (``redis://host:6379/0``, from ``MEMORIES_RATE_STORE`` too) shared by
    every process using it; ``rate_name`` names the quota explicitly, so that
    processes using different keys of one account pace together (by default
    a salted hash of base URL and key). The key and any password in the store
    URL never appear in ``repr()``. ``max_connections`` sizes the connection
    pool of a session the client creates. An answer larger than
    ``max_response_bytes`` fails its call (:class:`DecodeError`) unread.
    """

    api_key: str = attrs.field(validator=_check_api_key, repr=_redacted)
    base_url: str = attrs.field(
        default=DEFAULT_BASE_URL,
        converter=_strip_slash,
        validator=_check_base_url,
    )
    unique_id: str | None = attrs.field(default=None, validator=_check_unique_id)
    timeout: float = attrs.field(default=60.0, validator=_positive("timeout"))
    connect_timeout: float = attrs.field(default=10.0, validator=_positive("connect_timeout"))
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    rate: float | None = attrs.field(default=None, validator=_positive("rate"))
    burst: int = attrs.field(default=1, validator=_count("burst", 1))
    rate_store: str | None = attrs.field(
        default=None, validator=_check_rate_store, repr=_redacted_url
    )
    rate_name: str | None = attrs.field(default=None, validator=_check_rate_name)
    max_connections: int = attrs.field(default=64, validator=_count("max_connections", 1))
    max_response_bytes: int = attrs.field(
        default=64 * 1024 * 1024, validator=_count("max_response_bytes", 1)
    )
    user_agent: str | None = attrs.field(default=None, validator=_check_user_agent)
    """Your application's product token (``"my-app/2.1"``), sent before the SDK's own
    ``memories-async/<version> Python/<version> aiohttp/<version>`` in ``User-Agent``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **overrides: Any) -> Config:
        """Build a config from explicit ``overrides``, then the environment, then defaults.

        An override of ``None`` counts as not given. Raises :class:`ConfigError`
        naming the setting when one is missing or invalid.
        """
        env = os.environ if env is None else env
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, var in (
            ("api_key", ENV_API_KEY),
            ("base_url", ENV_BASE_URL),
            ("unique_id", ENV_UNIQUE_ID),
            ("rate_store", ENV_RATE_STORE),
        ):
            if name not in values and env.get(var):
                values[name] = env[var].strip()
        if "api_key" not in values:
            raise ConfigError(
                f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied and validated."""
        return attrs.evolve(self, **changes)
