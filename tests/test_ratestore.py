"""The rate store: URL checks, redaction, quota keys, and the Redis scripts on a real server.

The Redis tests need ``redis-server`` (see ``tests/conftest.py``): they are skipped
without it, and fail on CI (``CI=true``). Times of the shared record are checked
on the store's clock, exactly: no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio
import redis.asyncio

from memories_async import ConfigError, MemoriesError, RateStoreError
from memories_async._config import Config
from memories_async._governor import RateGovernor
from memories_async._quota import QuotaEstimate, slot_interval
from memories_async._ratestore import (
    IDLE_TTL,
    KEY_PREFIX,
    SOCKET_TIMEOUT,
    RedisRateStore,
    check_store_url,
    open_rate_store,
    quota_key,
    redact_url,
)

from .conftest import REDIS_PASSWORD, RedisServer, free_port

KEY = KEY_PREFIX + "test"
API_KEY = "sk-mavi-Zq8xRt-DISTINCTIVE-w3Kp7Lm"
SECRET = "pw-Kx93-never-shown"
"""A password that no message may show."""
PRECISION = 1e-5
"""The scripts write times with 6 decimals."""


def interval(rate: float) -> float:
    """The spacing of slots at ``rate``, margins included."""
    return slot_interval(rate)


def fixed(rate: float | None) -> QuotaEstimate:
    return QuotaEstimate.initial(rate, adaptive=False)


@pytest_asyncio.fixture
async def store(fresh_redis_url: str) -> AsyncIterator[RedisRateStore]:
    rate_store = RedisRateStore(fresh_redis_url)
    yield rate_store
    await rate_store.aclose()


@pytest_asyncio.fixture
async def admin(fresh_redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client of the same server, to look at and damage the record."""
    client = redis.asyncio.Redis.from_url(fresh_redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def reserve(
    store: RedisRateStore,
    initial: QuotaEstimate,
    *,
    burst: int = 1,
) -> tuple[float, bool, QuotaEstimate, str, float]:
    """``store.reserve`` and, in place of its wait, the slot's time on the store's clock
    (the time it was taken, or when it will be free)."""
    local = time.monotonic()
    wait, reserved, estimate, version, offset = await store.reserve(
        KEY, initial, burst=burst, local_now=local
    )
    return local + offset + wait, reserved, estimate, version, offset


async def field(admin: redis.asyncio.Redis, name: str) -> str | None:
    value = await admin.hget(KEY, name)
    assert value is None or isinstance(value, str)
    return value


async def store_time(admin: redis.asyncio.Redis) -> float:
    seconds, micros = await admin.time()
    return float(seconds) + micros * 1e-6


# -- check_store_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "MEMORY://",
        "redis://localhost:6379/0",
        "redis://127.0.0.1",
        "redis://:pw@redis.internal:6380/3",
        "redis://user:pw@redis.internal:6380/3",
        "rediss://redis.example.com:6380/1",
        "REDIS://Host:1/0",
        "unix:///var/run/redis/redis.sock",
        "unix:///tmp/redis.sock?db=2",
    ],
)
def test_check_store_url_accepts_the_supported_urls(url: str) -> None:
    assert check_store_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x", "unknown scheme 'ftp'"),
        ("http://redis:6379/0", "unknown scheme 'http'"),
        (f"ftp://user:{SECRET}@host/", "unknown scheme 'ftp'"),
        ("localhost:6379", "must be a URL such as memory:// or redis://"),
        ("", "must be a URL"),
        ("redis://", "names no host"),
        ("redis://:6379/0", "names no host"),
        (f"redis://:{SECRET}@:6379/0", "names no host"),
        (f"rediss://user:{SECRET}@/0", "names no host"),
        ("unix://", "names no socket path"),
        ("memory://x", "memory:// takes nothing after it"),
        ("memory:///", "memory:// takes nothing after it"),
        ("memory://localhost:6379", "memory:// takes nothing after it"),
        ("redis://host:abc/0", "malformed: Port could not be cast"),
        ("redis://host:99999/0", "malformed: Port out of range"),
        ("redis://host:6379:1/0", "malformed"),
    ],
)
def test_check_store_url_refuses_naming_the_problem_never_the_password(
    url: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match="rate_store") as caught:
        check_store_url(url)
    assert problem in str(caught.value)
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_a_malformed_port_with_a_password_is_a_config_error(port: str) -> None:
    with pytest.raises(ConfigError, match="malformed") as caught:
        check_store_url(f"redis://:{SECRET}@host:{port}/0")
    assert SECRET not in str(caught.value)


def test_config_checks_and_hides_the_store_url() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:6379/0"
    config = Config(api_key=API_KEY, rate_store=url, rate_name="acct", burst=2)
    assert (config.rate_store, config.rate_name, config.burst) == (url, "acct", 2)
    assert SECRET not in repr(config)
    assert "rate_store='redis://:***@127.0.0.1:6379/0'" in repr(config)
    assert "rate_store=None" in repr(Config(api_key=API_KEY))
    from_env = Config.from_env({"MEMORIES_API_KEY": API_KEY, "MEMORIES_RATE_STORE": f" {url} "})
    assert from_env.rate_store == url
    explicit = Config.from_env(
        {"MEMORIES_RATE_STORE": url}, api_key=API_KEY, rate_store="memory://"
    )
    assert explicit.rate_store == "memory://"
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        Config(api_key=API_KEY, rate_store="ftp://x")
    with pytest.raises(ConfigError, match="rate_name"):
        Config(api_key=API_KEY, rate_name=" ")
    with pytest.raises(ConfigError, match="burst"):
        Config(api_key=API_KEY, burst=0)


# -- redact_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@h:6379/0", "redis://:***@h:6379/0"),
        (f"redis://user:{SECRET}@h:6379/0", "redis://user:***@h:6379/0"),
        (f"rediss://default:{SECRET}@h/1", "rediss://default:***@h/1"),
        (f"redis://user:{SECRET}@h", "redis://user:***@h"),
        ("redis://user:@h/0", "redis://user:***@h/0"),
        (f"unix://:{SECRET}@/tmp/redis.sock?db=1", "unix://:***@/tmp/redis.sock?db=1"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://user@h:6379/0", "redis://user@h:6379/0"),
        ("memory://", "memory://"),
        (f"redis://:{SECRET}@[::1/0", "redis://:***@[::1/0"),
    ],
)
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_unencoded_special_character_does_not_reveal_the_password() -> None:
    url = "redis://:pa#Kx93-never-shown@h:6379/0"
    with pytest.raises(ConfigError) as caught:
        check_store_url(url)
    assert "Kx93-never-shown" not in str(caught.value)


# -- quota_key ---------------------------------------------------------------------------------


def test_quota_key_is_a_salted_hash_never_the_api_key() -> None:
    key = quota_key("https://api.memories.ai", API_KEY)
    assert key.startswith(KEY_PREFIX)
    digest = key.removeprefix(KEY_PREFIX)
    assert len(digest) == 32
    int(digest, 16)
    pieces = {API_KEY[i : i + 8] for i in range(len(API_KEY) - 7)}
    assert not [piece for piece in pieces if piece in key]
    # Stable, so that processes find each other; different per account and service.
    assert key == quota_key("https://api.memories.ai", API_KEY)
    assert key != quota_key("https://api.memories.ai", API_KEY + "x")
    assert key != quota_key("http://127.0.0.1:8080", API_KEY)
    assert key != quota_key("", "https://api.memories.ai" + API_KEY)


def test_quota_key_is_salted() -> None:
    import hashlib

    unsalted = {
        hashlib.sha256(data).hexdigest()[:32]
        for data in (
            API_KEY.encode(),
            b"https://api.memories.ai" + API_KEY.encode(),
            b"https://api.memories.ai\0" + API_KEY.encode(),
        )
    }
    assert quota_key("https://api.memories.ai", API_KEY).removeprefix(KEY_PREFIX) not in unsalted


def test_an_explicit_quota_name_is_used_as_is() -> None:
    assert quota_key("https://api.memories.ai", API_KEY, "acct") == KEY_PREFIX + "acct"
    assert quota_key("http://other", "other-key", "acct") == KEY_PREFIX + "acct"
    assert quota_key("x", "y", "  team quota  ") == KEY_PREFIX + "team quota"


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "tab\there"])
def test_a_blank_or_unprintable_quota_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="rate_name must be a non-empty printable string"):
        quota_key("https://api.memories.ai", API_KEY, name)


# -- open_rate_store ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "memory://", "Memory://"])
def test_memory_means_no_store(url: str | None) -> None:
    assert open_rate_store(url) is None


@pytest.mark.asyncio
async def test_a_redis_url_opens_a_redis_store_lazily() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    store = open_rate_store(url)  # nothing is connected yet
    assert isinstance(store, RedisRateStore)
    assert store.url == redact_url(url)
    assert SECRET not in repr(store)
    assert repr(store) == f"<RedisRateStore {store.url}>"
    await store.aclose()
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_rate_store("ftp://x")


# -- the scripts, on a real Redis ----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [5.0, 1.0, 0.25])
async def test_reserve_spaces_slots_one_interval_apart_on_the_store_clock(
    store: RedisRateStore, admin: redis.asyncio.Redis, rate: float
) -> None:
    before = await store_time(admin)
    slot, reserved, estimate, version, _offset = await reserve(store, fixed(rate))
    assert (reserved, version, estimate.rate) == (True, "0", rate)
    assert slot >= before
    tat = float(await field(admin, "tat") or "nan")
    assert tat == pytest.approx(slot + interval(rate), abs=PRECISION)
    # The next slot is not free yet: nothing is taken, the wait ends at it.
    for _ in range(3):
        later, reserved, *_ = await reserve(store, fixed(rate))
        assert not reserved
        assert later == pytest.approx(slot + interval(rate), abs=PRECISION)
    assert float(await field(admin, "tat") or "nan") == tat


@pytest.mark.asyncio
async def test_a_burst_goes_at_once_then_slots_are_spaced(store: RedisRateStore) -> None:
    taken = []
    for _ in range(3):
        local = time.monotonic()
        wait, reserved, _est, _ver, offset = await store.reserve(
            KEY, fixed(1.0), burst=3, local_now=local
        )
        assert (wait, reserved) == (0.0, True)
        taken.append(local + offset)
    local = time.monotonic()
    wait, reserved, _est, _ver, offset = await store.reserve(
        KEY, fixed(1.0), burst=3, local_now=local
    )
    assert not reserved
    assert wait > 0
    assert local + offset + wait == pytest.approx(taken[0] + interval(1.0), abs=0.01)


@pytest.mark.asyncio
async def test_no_rate_means_no_slots(store: RedisRateStore, admin: redis.asyncio.Redis) -> None:
    for _ in range(5):
        local = time.monotonic()
        wait, reserved, estimate, *_ = await store.reserve(
            KEY, fixed(None), burst=1, local_now=local
        )
        assert (wait, reserved, estimate.rate) == (0.0, True, None)
    assert await field(admin, "tat") is None
    assert await field(admin, "rate") == ""


@pytest.mark.asyncio
async def test_the_record_rate_wins_over_the_callers_initial_estimate(
    store: RedisRateStore,
) -> None:
    first, *_ = await reserve(store, fixed(0.5))
    # A second process configured with another rate joins the record as it is.
    second, reserved, estimate, *_ = await reserve(store, fixed(100.0))
    assert not reserved  # at 0.5/s the next slot is 2 s away
    assert estimate.rate == 0.5
    assert second - first == pytest.approx(interval(0.5), abs=PRECISION)


@pytest.mark.asyncio
async def test_a_pause_makes_reserve_wait_without_reserving(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    _slot, _reserved, estimate, version, offset = await reserve(store, fixed(5.0))
    tat = await field(admin, "tat")
    pause_local = time.monotonic() + 100.0
    written, fresh, version = await store.update(
        KEY, version, estimate, offset=offset, pause_until=pause_local
    )
    assert (written, fresh, version) == (True, None, "1")
    pause = float(await field(admin, "pause") or "nan")
    assert pause == pytest.approx(pause_local + offset, abs=PRECISION)

    until, reserved, during, _version, offset2 = await reserve(store, fixed(5.0))
    assert not reserved
    assert until == pytest.approx(pause, abs=PRECISION)
    assert during.pause_until == pytest.approx(pause - offset2, abs=PRECISION)
    assert await field(admin, "tat") == tat

    # The later pause wins, whoever writes it and whatever the version.
    await store.update(KEY, "stale", estimate, offset=offset, pause_until=pause_local - 50)
    assert float(await field(admin, "pause") or "nan") == pytest.approx(pause, abs=PRECISION)
    await store.update(KEY, "stale", estimate, offset=offset, pause_until=pause_local + 50)
    assert float(await field(admin, "pause") or "nan") == pytest.approx(pause + 50, abs=PRECISION)
    assert await field(admin, "ver") == "1"


@pytest.mark.asyncio
async def test_update_is_compare_and_set_on_the_version(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    _slot, _reserved, estimate, version, offset = await reserve(store, fixed(5.0))
    assert version == "0"
    changed = time.monotonic()
    mine = attrs.evolve(estimate, rate=4.0, good=4.0, sent=7, changed_at=changed)
    written, fresh, version = await store.update(KEY, "0", mine, offset=offset, pause_until=None)
    assert (written, fresh, version) == (True, None, "1")
    assert await field(admin, "rate") == "4.0"
    record = json.loads(await field(admin, "est") or "{}")
    assert record["rate"] == 4.0
    assert record["sent"] == 7
    assert record["changed_at"] == pytest.approx(changed + offset, abs=PRECISION)

    # Another writer that read version 0 loses, and gets the record's estimate.
    theirs = attrs.evolve(estimate, rate=3.0, good=3.0)
    written, fresh, version = await store.update(KEY, "0", theirs, offset=offset, pause_until=None)
    assert not written
    assert version == "1"
    assert fresh is not None
    assert (fresh.rate, fresh.good, fresh.sent) == (4.0, 4.0, 7)
    assert await field(admin, "rate") == "4.0"

    # With the fresh version it writes.
    written, fresh, version = await store.update(
        KEY, version, theirs, offset=offset, pause_until=None
    )
    assert (written, fresh, version) == (True, None, "2")
    _slot, _reserved, estimate, version, _offset = await reserve(store, fixed(5.0))
    assert (estimate.rate, version) == (3.0, "2")


@pytest.mark.asyncio
async def test_the_record_expires_after_the_idle_ttl(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    ttl = int(IDLE_TTL * 1000)
    _slot, _reserved, estimate, version, offset = await reserve(store, fixed(5.0))
    assert ttl - 60_000 < await admin.pttl(KEY) <= ttl
    await admin.pexpire(KEY, 5_000)
    await reserve(store, fixed(5.0))
    assert ttl - 60_000 < await admin.pttl(KEY) <= ttl
    await admin.pexpire(KEY, 5_000)
    await store.update(KEY, version, estimate, offset=offset, pause_until=None)
    assert ttl - 60_000 < await admin.pttl(KEY) <= ttl
    await admin.pexpire(KEY, 5_000)
    written, *_ = await store.update(KEY, version, estimate, offset=offset, pause_until=None)
    assert not written  # a stale write refreshes the record too
    assert ttl - 60_000 < await admin.pttl(KEY) <= ttl


@pytest.mark.asyncio
async def test_the_scripts_survive_a_script_flush(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    first, _reserved, estimate, version, offset = await reserve(store, fixed(1.0))
    await admin.script_flush()
    second, reserved, *_ = await reserve(store, fixed(1.0))
    assert not reserved  # the script ran again: the next slot is 1 s away
    assert second - first == pytest.approx(interval(1.0), abs=PRECISION)
    await admin.script_flush()
    written, _fresh, version = await store.update(
        KEY, version, estimate, offset=offset, pause_until=None
    )
    assert (written, version) == (True, "1")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"est": "not json", "ver": "0", "rate": "5"}, "holds a damaged record"),
        ({"est": "[1, 2]", "ver": "0", "rate": "5"}, "holds a damaged record"),
        ({"est": '{"rate": 5}', "ver": "0", "rate": "5"}, "holds a damaged record"),
        ({"est": "{}", "ver": "0", "rate": "abc"}, "arithmetic"),
    ],
    ids=["not-json", "not-an-object", "missing-fields", "bad-rate"],
)
async def test_a_damaged_record_raises_rate_store_error(
    store: RedisRateStore, admin: redis.asyncio.Redis, record: dict[str, str], problem: str
) -> None:
    for name, value in record.items():
        await admin.hset(KEY, name, value)
    with pytest.raises(RateStoreError, match=problem) as caught:
        await reserve(store, fixed(5.0))
    assert store.url in str(caught.value)


@pytest.mark.asyncio
async def test_a_record_of_another_type_raises_rate_store_error(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    await admin.set(KEY, "not a hash")
    with pytest.raises(RateStoreError, match="WRONGTYPE"):
        await reserve(store, fixed(5.0))
    with pytest.raises(RateStoreError, match="WRONGTYPE"):
        await store.update(KEY, "0", fixed(5.0), offset=0.0, pause_until=None)


@pytest.mark.asyncio
async def test_a_damaged_fresh_estimate_after_a_lost_update_raises(
    store: RedisRateStore, admin: redis.asyncio.Redis
) -> None:
    await admin.hset(KEY, mapping={"est": "garbage", "ver": "9", "rate": "5"})
    with pytest.raises(RateStoreError, match="holds a damaged record"):
        await store.update(KEY, "1", fixed(5.0), offset=0.0, pause_until=None)


@pytest.mark.asyncio
async def test_an_unreachable_store_raises_naming_the_store() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisRateStore(url)
    try:
        # Never a long hang: a store that does not answer is given up after SOCKET_TIMEOUT.
        kwargs = store._redis.connection_pool.connection_kwargs
        assert kwargs["socket_connect_timeout"] == SOCKET_TIMEOUT
        assert kwargs["socket_timeout"] == SOCKET_TIMEOUT
        for call in (
            store.check(),
            store.reserve(KEY, fixed(5.0), burst=1, local_now=0.0),
            store.update(KEY, "0", fixed(5.0), offset=0.0, pause_until=None),
        ):
            with pytest.raises(RateStoreError) as caught:
                await call
            assert str(caught.value).startswith(f"rate store {url}: ")
            assert isinstance(caught.value, MemoriesError)
    finally:
        await store.aclose()


# -- passwords -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_password_store_works_and_never_shows_the_password(
    redis_password_url: str, redis_password_server: RedisServer
) -> None:
    assert REDIS_PASSWORD in redis_password_url
    port = redis_password_server.port
    for url in (redis_password_url, f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{port}/0"):
        store = RedisRateStore(url)
        try:
            await store.check()
            _slot, _taken, estimate, *_ = await reserve(store, fixed(5.0))
            assert estimate.rate == 5.0  # the store answered with the record
            assert "***" in store.url
            assert REDIS_PASSWORD not in store.url
            assert REDIS_PASSWORD not in repr(store)
        finally:
            await store.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("user", ["", "default"])
async def test_a_wrong_or_missing_password_is_a_rate_store_error_without_secrets(
    redis_password_server: RedisServer, user: str
) -> None:
    port = redis_password_server.port
    for url in (
        f"redis://{user}:{SECRET}@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0",
        f"redis://{user}:{SECRET}@127.0.0.1:{free_port()}/0",
    ):
        store = RedisRateStore(url)
        try:
            for call in (
                store.check(),
                store.reserve(KEY, fixed(5.0), burst=1, local_now=0.0),
            ):
                with pytest.raises(RateStoreError) as caught:
                    await call
                message = str(caught.value)
                assert redact_url(url) in message
                for secret in (REDIS_PASSWORD, SECRET):
                    assert secret not in message
                    assert secret not in repr(caught.value)
        finally:
            await store.aclose()


@pytest.mark.asyncio
async def test_a_lost_password_store_is_logged_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://user:{SECRET}@127.0.0.1:{free_port()}/0"
    governor = RateGovernor(rate=50.0, adaptive=False, store=RedisRateStore(url), key=KEY)
    try:
        assert SECRET not in repr(governor)
        with caplog.at_level(logging.DEBUG, logger="memories_async"):
            with pytest.raises(RateStoreError) as caught:
                await governor.check()
            assert SECRET not in str(caught.value)
            sent = await governor.acquire()
            await governor.answered(sent_at=sent, refused=False)
            await governor.acquire()
    finally:
        await governor.aclose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert redact_url(url) in warnings[0].getMessage()
    assert SECRET not in caplog.text
    assert not governor.stats().shared
