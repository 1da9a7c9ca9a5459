"""Governors, clients and the command line sharing one pacing through a real Redis.

Each governor has its own :class:`RedisRateStore`, as separate processes would.
Spacing is measured with ``time.monotonic`` as lower bounds only; nothing here
asserts that anything is fast. Needs ``redis-server`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio
from click.testing import CliRunner, Result

from memories_async import MemoriesClient, RateStoreError
from memories_async import _governor as governor_module
from memories_async._cli.app import cli
from memories_async._cli.common import Invocation
from memories_async._governor import RateGovernor
from memories_async._quota import JITTER, MARGIN
from memories_async._ratestore import KEY_PREFIX, RedisRateStore, redact_url
from memories_async.testing import (
    FakeLibrary,
    FakeServer,
    FakeServerThread,
    KeyState,
    RateLimits,
)

from .conftest import REDIS_PASSWORD, RedisServer, free_port

RATE = 5.0
SPACING = 1 / RATE
"""The spacing a strict quota of ``RATE`` requires; the governor adds a margin on top."""
INTERVAL = (1 + MARGIN) / RATE + JITTER
KEY = KEY_PREFIX + "sharing"
ACCOUNT_KEYS = [
    "sk-test-acct-key-one-Vq1",
    "sk-test-acct-key-two-Vq2",
    "sk-test-acct-key-three-Vq3",
]
SECRET = "pw-Lm27-never-shown"

RedisFactory = Callable[..., RedisServer]


def gaps(times: Sequence[float]) -> list[float]:
    ordered = sorted(times)
    return [later - earlier for earlier, later in itertools.pairwise(ordered)]


@contextlib.asynccontextmanager
async def governors(url: str, count: int) -> AsyncIterator[list[RateGovernor]]:
    """``count`` governors of one quota, each with its own connection to the store."""
    made = [
        RateGovernor(rate=RATE, adaptive=False, store=RedisRateStore(url), key=KEY)
        for _ in range(count)
    ]
    try:
        yield made
    finally:
        for governor in made:
            await governor.aclose()


async def take(governor: RateGovernor, times: list[float]) -> None:
    """Acquire a slot, note when it was granted, and report a passed answer."""
    sent = await governor.acquire()
    times.append(sent)
    await governor.answered(sent_at=sent, refused=False)


@pytest_asyncio.fixture
async def admin(fresh_redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(fresh_redis_url, decode_responses=True)
    yield client
    await client.aclose()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "memories_async" and record.levelno == logging.WARNING
    ]


# -- governors -------------------------------------------------------------------------------


@pytest.mark.realtime
@pytest.mark.asyncio
async def test_three_governors_pace_as_one(
    fresh_redis_url: str, admin: redis.asyncio.Redis
) -> None:
    granted: list[float] = []
    async with governors(fresh_redis_url, 3) as three:
        await asyncio.gather(*(take(three[i % 3], granted) for i in range(12)))
        assert all(governor.stats().shared for governor in three)
        assert sum(governor.stats().accepted for governor in three) == 12
    assert len(granted) == 12
    spacing = gaps(granted)
    assert min(spacing) >= SPACING, spacing
    # On the store's clock the slots are exactly one interval apart.
    record = await admin.hgetall(KEY)
    assert record["rate"] == repr(RATE)
    assert int(record["ver"]) >= 12  # every answer was written (compare and set)
    assert await admin.keys("*") == [KEY]


@pytest.mark.realtime
@pytest.mark.asyncio
async def test_a_server_pause_reaches_every_governor_of_the_store(fresh_redis_url: str) -> None:
    # A 503 with Retry-After seen by one process pauses the others too.
    async with governors(fresh_redis_url, 2) as (one, other):
        await one.acquire()
        await one.pause_shared(0.5)
        started = asyncio.get_running_loop().time()
        await other.acquire()
        waited = asyncio.get_running_loop().time() - started
    assert waited >= 0.45
    assert one.stats().pauses == 1


@pytest.mark.realtime
@pytest.mark.asyncio
async def test_governors_of_different_quotas_do_not_wait_for_each_other(
    fresh_redis_url: str, admin: redis.asyncio.Redis
) -> None:
    one = RateGovernor(rate=0.01, adaptive=False, store=RedisRateStore(fresh_redis_url), key=KEY)
    other = RateGovernor(
        rate=0.01, adaptive=False, store=RedisRateStore(fresh_redis_url), key=KEY + "-other"
    )
    try:
        # At 0.01 per second a second slot of the same quota would be 100 s away.
        await one.acquire()
        await other.acquire()
    finally:
        await one.aclose()
        await other.aclose()
    assert sorted(await admin.keys("*")) == [KEY, KEY + "-other"]


@pytest.mark.realtime
@pytest.mark.asyncio
async def test_a_store_lost_mid_run_is_reported_once_and_rejoined(
    redis_factory: RedisFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(governor_module, "REJOIN_AFTER", 0.3)
    caplog.set_level(logging.DEBUG, logger="memories_async")
    server = redis_factory(password=REDIS_PASSWORD)
    shown = redact_url(server.url)
    assert REDIS_PASSWORD not in shown
    store = RedisRateStore(server.url)
    tries = {"ok": 0, "failed": 0}
    reserve = store.reserve

    async def counted(*args: object, **kwargs: object) -> object:
        try:
            result = await reserve(*args, **kwargs)  # type: ignore[arg-type]
        except RateStoreError:
            tries["failed"] += 1
            raise
        tries["ok"] += 1
        return result

    monkeypatch.setattr(store, "reserve", counted)
    governor = RateGovernor(rate=RATE, adaptive=False, store=store, key=KEY)
    before: list[float] = []
    during: list[float] = []
    after: list[float] = []
    try:
        await governor.check()
        for _ in range(3):
            await take(governor, before)
        assert governor.stats().shared
        assert warnings_of(caplog) == []

        server.stop()
        for _ in range(6):  # about 1.2 s: the store is tried again every 0.3 s
            await take(governor, during)
        assert not governor.stats().shared
        assert tries["failed"] >= 2
        lost = warnings_of(caplog)
        assert len(lost) == 1, lost
        assert shown in lost[0]
        assert "pacing in this process only" in lost[0]
        with pytest.raises(RateStoreError):
            await governor.check()

        server.start()  # the same port, empty
        ok_before = tries["ok"]
        for _ in range(4):
            await take(governor, after)
        assert tries["ok"] > ok_before
        assert governor.stats().shared
    finally:
        await governor.aclose()
    messages = warnings_of(caplog)
    assert len(messages) == 2, messages
    assert "answers again" in messages[1]
    assert shown in messages[1]
    assert REDIS_PASSWORD not in caplog.text
    # Slots kept their spacing before the loss, across it, and after rejoining.
    assert min(gaps(before + during)) >= SPACING
    assert min(gaps(after)) >= SPACING
    assert governor.stats().accepted == 13


class VirtualTime:
    """A clock that only moves when the governor sleeps (or the test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_rejoining_an_empty_store_keeps_the_local_spacing(
    redis_factory: RedisFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(governor_module, "REJOIN_AFTER", 0.1)
    server = redis_factory()
    virtual = VirtualTime()
    governor = RateGovernor(
        rate=RATE,
        adaptive=False,
        store=RedisRateStore(server.url),
        key=KEY,
        clock=virtual.clock,
        sleep=virtual.sleep,
    )
    try:
        await governor.acquire()
        await governor.acquire()
        server.stop()
        local = await governor.acquire()
        virtual.now += 0.15  # the caller works a while; the store is due to be tried again
        server.start()
        rejoined = await governor.acquire()
    finally:
        await governor.aclose()
    assert rejoined - local >= SPACING


@pytest.mark.asyncio
async def test_a_recreated_record_holds_times_on_the_store_clock(
    fresh_redis_url: str, admin: redis.asyncio.Redis
) -> None:
    governor = RateGovernor(rate=RATE, store=RedisRateStore(fresh_redis_url), key=KEY)
    try:
        sent = await governor.acquire()
        await governor.answered(sent_at=sent, refused=False)
        await admin.delete(KEY)  # the record expired, or Redis restarted without persistence
        await governor.acquire()
    finally:
        await governor.aclose()
    seconds, _micros = await admin.time()
    changed_at = json.loads(await admin.hget(KEY, "est") or "{}")["changed_at"]
    # On the store's clock (Unix time), not a machine's uptime: off by at most a round trip.
    assert abs(changed_at - seconds) < 3600


# -- clients end to end against the fake service -----------------------------------------------


@pytest.mark.realtime
@pytest.mark.asyncio
async def test_clients_with_different_keys_of_one_account_share_its_quota(
    fresh_redis_url: str, admin: redis.asyncio.Redis
) -> None:
    library = FakeLibrary.generate(40, seed=5)
    numbers = sorted(video.video_no for video in library.videos(status="PARSE"))[:30]
    assert len(numbers) == 30
    async with (
        FakeServer(library, api_keys=ACCOUNT_KEYS, rate_limits=RateLimits.strict(RATE)) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        clients = [
            await stack.enter_async_context(
                MemoriesClient(
                    api_key=key,
                    base_url=server.url,
                    rate=RATE,
                    rate_store=fresh_redis_url,
                    rate_name="acct",
                )
            )
            for key in ACCOUNT_KEYS
        ]
        for client in clients:
            await client.governor.check()
            assert client.governor.shared
        transcripts = await asyncio.gather(
            *(clients[i % 3].get_transcription(number) for i, number in enumerate(numbers))
        )
        assert [transcript.video_no for transcript in transcripts] == numbers
        assert all(not transcript.is_empty for transcript in transcripts)
        assert server.stats.rate_limited <= 1, server.stats
        assert all(client.governor.stats().shared for client in clients)
    assert await admin.keys("*") == [KEY_PREFIX + "acct"]


# -- the command line ------------------------------------------------------------------------


def invoke(args: Sequence[str], env: dict[str, str | None] | None = None) -> Result:
    runner = CliRunner()
    environment: dict[str, str | None] = {"MEMORIES_RATE_STORE": None, "COLUMNS": "120"}
    environment.update(env or {})
    return runner.invoke(
        cli, list(args), env=environment, catch_exceptions=False, obj=Invocation(tuple(args))
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def api_server() -> Iterator[FakeServer]:
    fake = FakeServer(FakeLibrary.generate(5, seed=2), api_keys={ACCOUNT_KEYS[0]: KeyState.ACTIVE})
    with FakeServerThread(fake) as running:
        yield running


def api_env(server: FakeServer) -> dict[str, str | None]:
    return {"MEMORIES_API_KEY": ACCOUNT_KEYS[0], "MEMORIES_BASE_URL": server.url}


@pytest.mark.parametrize("password", [None, SECRET])
def test_an_unreachable_store_stops_the_export_with_one_line(
    api_server: FakeServer, tmp_path: Path, password: str | None
) -> None:
    auth = "" if password is None else f"user:{password}@"
    url = f"redis://{auth}127.0.0.1:{free_port()}/0"
    number = next(iter(FakeLibrary.generate(5, seed=2).videos(status="PARSE"))).video_no
    result = invoke(
        ["export", number, "--out", str(tmp_path / "out.jsonl"), "--rate-store", url],
        api_env(api_server),
    )
    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [lines(result.stderr)[0]]
    assert lines(result.stderr)[0].startswith("error: rate store ")
    assert redact_url(url) in result.stderr
    assert "--rate-store" in result.stderr
    assert result.stdout == ""
    assert api_server.stats.total_requests == 0
    if password is not None:
        assert password not in result.output
        assert password not in result.stdout + result.stderr


@pytest.mark.parametrize("password", [None, SECRET])
def test_an_unreachable_store_stops_a_demo_export(tmp_path: Path, password: str | None) -> None:
    auth = "" if password is None else f":{password}@"
    url = f"redis://{auth}127.0.0.1:{free_port()}/0"
    result = invoke(
        ["export", "--demo", "5", "--out", str(tmp_path / "x"), "--rate-store", url],
        {"MEMORIES_API_KEY": None, "MEMORIES_BASE_URL": None},
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in lines(result.stderr) if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert redact_url(url) in errors[0]
    # Besides the error only the demo's own note (see the report on this).
    assert all(line.startswith(("error:", "demo:")) for line in lines(result.stderr))
    if password is not None:
        assert password not in result.stdout + result.stderr


def test_an_unreachable_store_stops_get() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    result = invoke(["get", "--demo", "--rate-store", url], {"MEMORIES_API_KEY": None})
    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [f"error: {lines(result.stderr)[0].removeprefix('error: ')}"]
    assert redact_url(url) in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["export", "--demo", "3", "--out", "x"], ["get", "--demo"]])
def test_an_unknown_store_scheme_is_a_usage_error(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(
        [*command, "--rate-store", "ftp://x"],
        {"MEMORIES_API_KEY": None},
    )
    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [lines(result.stderr)[0]]
    assert "rate_store" in result.stderr
    assert "unknown scheme 'ftp'" in result.stderr


def test_the_store_url_comes_from_the_environment(api_server: FakeServer, tmp_path: Path) -> None:
    env = api_env(api_server)
    env["MEMORIES_RATE_STORE"] = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    number = next(iter(FakeLibrary.generate(5, seed=2).videos(status="PARSE"))).video_no
    result = invoke(["export", number, "--out", str(tmp_path / "o.jsonl")], env)
    assert result.exit_code == 2, result.output
    assert "MEMORIES_RATE_STORE" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    env["MEMORIES_RATE_STORE"] = "ftp://x"
    result = invoke(["export", number, "--out", str(tmp_path / "o.jsonl")], env)
    assert result.exit_code == 2, result.output
    assert "unknown scheme 'ftp'" in result.stderr


def test_a_demo_export_paces_through_a_reachable_store(
    fresh_redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    out = tmp_path / "demo.jsonl"
    result = invoke(
        [
            *("export", "--demo", "5", "--out", str(out), "-q"),
            *("--rate-store", fresh_redis_url, "--rate-name", "cli-acct"),
        ],
        {"MEMORIES_API_KEY": None, "MEMORIES_BASE_URL": None},
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().count(b"\n") >= 1
    assert redis_server.command("EXISTS", KEY_PREFIX + "cli-acct") == ":1"
