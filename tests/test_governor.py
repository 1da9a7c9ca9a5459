"""The rate governor on virtual time: token bucket, shared cooldown, adaptive rate."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable
from typing import Any

import pytest

from memories_async import GovernorStats, RateGovernor
from memories_async._governor import MIN_RATE

T0 = 1000.0


class VirtualTime:
    """A clock and an async sleep on virtual time.

    :meth:`run` drives the given awaitables: whenever every one of them is
    either finished or asleep, the clock jumps to the earliest wake-up time.
    No real time passes.
    """

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def run(self, *awaitables: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(a) for a in awaitables]
        while True:
            for _ in range(10_000):
                pending = [t for t in tasks if not t.done()]
                if len(self._sleepers) == len(pending):
                    break
                await asyncio.sleep(0)
            else:  # pragma: no cover - a test bug, not a governor behaviour
                raise AssertionError("a task neither finishes nor sleeps")
            if not pending:
                return [t.result() for t in tasks]
            self.now = max(self.now, self._sleepers[0][0])
            while self._sleepers and self._sleepers[0][0] <= self.now:
                heapq.heappop(self._sleepers)[2].set_result(None)


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def governor(vt: VirtualTime, **options: Any) -> RateGovernor:
    return RateGovernor(clock=vt.clock, sleep=vt.sleep, **options)


async def acquire_many(gov: RateGovernor, n: int) -> list[float]:
    return [await gov.acquire() for _ in range(n)]


# --- no rate -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_rate_never_waits(vt: VirtualTime) -> None:
    gov = governor(vt)
    (times,) = await vt.run(acquire_many(gov, 50))
    assert times == [T0] * 50
    assert vt.sleeps == []
    assert gov.rate is None
    assert gov.stats() == GovernorStats(rate=None, rate_limited=0, cooldowns=0, waited=0.0)


@pytest.mark.asyncio
async def test_no_rate_concurrent_never_waits(vt: VirtualTime) -> None:
    gov = governor(vt)
    times = await vt.run(*(gov.acquire() for _ in range(20)))
    assert times == [T0] * 20
    assert vt.sleeps == []


# --- token bucket --------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 5.0, 40.0])
@pytest.mark.parametrize("n", [1, 2, 7])
async def test_sequential_acquires_are_spaced(vt: VirtualTime, rate: float, n: int) -> None:
    gov = governor(vt, rate=rate)
    (times,) = await vt.run(acquire_many(gov, n))
    assert times[-1] - times[0] == pytest.approx((n - 1) / rate)
    for k, sent in enumerate(times):
        assert sent == pytest.approx(T0 + k / rate)
    # Each call starts when the previous one returned.
    assert gov.stats().waited == pytest.approx(times[-1] - times[0])


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [1.0, 5.0])
async def test_concurrent_acquires_are_spaced(vt: VirtualTime, rate: float) -> None:
    gov = governor(vt, rate=rate)
    times = await vt.run(*(gov.acquire() for _ in range(6)))
    assert sorted(times) == pytest.approx([T0 + k / rate for k in range(6)])
    assert gov.stats().waited == pytest.approx(sum(t - T0 for t in times))


@pytest.mark.asyncio
@pytest.mark.parametrize("burst", [1, 3, 10])
async def test_burst_then_spacing(vt: VirtualTime, burst: int) -> None:
    gov = governor(vt, rate=2.0, burst=burst)
    (times,) = await vt.run(acquire_many(gov, burst + 3))
    assert times[:burst] == [T0] * burst
    assert times[burst:] == pytest.approx([T0 + 0.5, T0 + 1.0, T0 + 1.5])


@pytest.mark.asyncio
async def test_burst_refills_after_idle_but_not_beyond_burst(vt: VirtualTime) -> None:
    gov = governor(vt, rate=1.0, burst=3)
    (first,) = await vt.run(acquire_many(gov, 3))
    assert first == [T0] * 3
    vt.advance(100.0)
    (second,) = await vt.run(acquire_many(gov, 4))
    idle_end = T0 + 100.0
    assert second == pytest.approx([idle_end, idle_end, idle_end, idle_end + 1.0])


@pytest.mark.asyncio
async def test_slow_caller_is_not_delayed(vt: VirtualTime) -> None:
    gov = governor(vt, rate=2.0)

    async def slow() -> list[float]:
        times = []
        for _ in range(4):
            times.append(await gov.acquire())
            vt.advance(1.0)  # the caller itself is slower than the rate
        return times

    (times,) = await vt.run(slow())
    assert times == [T0, T0 + 1.0, T0 + 2.0, T0 + 3.0]
    assert vt.sleeps == []


# --- shared cooldown -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_delays_every_concurrent_caller(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0)
    assert gov.on_rate_limited() == 1.0
    times = await vt.run(*(gov.acquire() for _ in range(5)))
    assert times == [T0 + 1.0] * 5
    stats = gov.stats()
    assert stats.rate_limited == 1
    assert stats.cooldowns == 1
    assert stats.waited == pytest.approx(5.0)


@pytest.mark.asyncio
async def test_cooldown_started_mid_wait_extends_it(vt: VirtualTime) -> None:
    gov = governor(vt, rate=1.0, adaptive=False)

    async def rate_limit_later() -> None:
        await vt.sleep(0.5)
        gov.on_rate_limited(retry_after=5.0)

    first, second, _ = await vt.run(gov.acquire(), gov.acquire(), rate_limit_later())
    assert first == T0
    assert second == pytest.approx(T0 + 5.5)


@pytest.mark.asyncio
async def test_cooldown_ends_then_normal_pacing(vt: VirtualTime) -> None:
    gov = governor(vt, rate=2.0, adaptive=False)
    gov.on_rate_limited(retry_after=3.0)
    (times,) = await vt.run(acquire_many(gov, 3))
    assert times == pytest.approx([T0 + 3.0, T0 + 3.5, T0 + 4.0])


@pytest.mark.asyncio
@pytest.mark.parametrize("retry_after", [0.0, 2.5, 7.0, 60.0])
async def test_retry_after_is_honored(vt: VirtualTime, retry_after: float) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0, max_cooldown=30.0)
    assert gov.on_rate_limited(retry_after=retry_after) == retry_after
    (sent,) = await vt.run(gov.acquire())
    assert sent == T0 + retry_after


def test_retry_after_capped_at_four_max_cooldowns(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, max_cooldown=30.0)
    assert gov.on_rate_limited(retry_after=1000.0) == 120.0


def test_cooldown_grows_exponentially_and_caps(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0, max_cooldown=8.0)
    pauses = []
    for _ in range(6):
        pauses.append(gov.on_rate_limited())
        vt.advance(100.0)  # past the cooldown, no success in between
    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert gov.stats().cooldowns == 6
    assert gov.stats().rate_limited == 6


def test_success_resets_the_cooldown_growth(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0)
    assert gov.on_rate_limited() == 1.0
    vt.advance(10.0)
    assert gov.on_rate_limited() == 2.0
    vt.advance(10.0)
    gov.on_success()
    assert gov.on_rate_limited() == 1.0


def test_answers_inside_one_cooldown_start_one_cooldown(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0, max_cooldown=30.0)
    first = gov.on_rate_limited()
    vt.advance(0.25)
    second = gov.on_rate_limited()
    assert first == 1.0
    assert second == pytest.approx(2.0)  # the second answer extends the same cooldown
    stats = gov.stats()
    assert stats.cooldowns == 1
    assert stats.rate_limited == 2


def test_shorter_pause_does_not_shorten_cooldown(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=1.0)
    assert gov.on_rate_limited(retry_after=10.0) == 10.0
    vt.advance(2.0)
    gov.on_success()
    assert gov.on_rate_limited() == pytest.approx(8.0)
    assert gov.stats().cooldowns == 1


def test_zero_cooldown_means_no_pause(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False, cooldown=0.0)
    assert gov.on_rate_limited() == 0.0
    assert gov.stats().rate_limited == 1


@pytest.mark.asyncio
async def test_waited_counts_every_caller(vt: VirtualTime) -> None:
    gov = governor(vt, rate=1.0, adaptive=False)
    gov.on_rate_limited(retry_after=2.0)
    times = await vt.run(*(gov.acquire() for _ in range(3)))
    assert sorted(times) == pytest.approx([T0 + 2.0, T0 + 3.0, T0 + 4.0])
    assert gov.stats().waited == pytest.approx(2.0 + 3.0 + 4.0)


# --- adaptive rate -------------------------------------------------------------------------------


def test_rate_limit_cuts_the_rate_by_thirty_percent(vt: VirtualTime) -> None:
    gov = governor(vt, rate=8.0)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(5.6)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(3.92)
    assert gov.stats().rate == pytest.approx(3.92)


def test_rate_never_drops_below_minimum(vt: VirtualTime) -> None:
    gov = governor(vt, rate=1.0)
    for _ in range(20):
        gov.on_rate_limited()
    assert gov.rate == MIN_RATE


def test_not_adaptive_keeps_the_rate(vt: VirtualTime) -> None:
    gov = governor(vt, rate=5.0, adaptive=False)
    gov.on_rate_limited()
    gov.on_rate_limited()
    assert gov.rate == 5.0
    gov.on_success()
    assert gov.rate == 5.0


def test_not_adaptive_without_rate_stays_unlimited(vt: VirtualTime) -> None:
    gov = governor(vt, adaptive=False)
    gov.on_rate_limited()
    assert gov.rate is None


@pytest.mark.asyncio
async def test_first_decrease_starts_from_the_success_rate(vt: VirtualTime) -> None:
    gov = governor(vt)

    async def ten_per_second_four_accepted() -> None:
        for n in range(30):
            await gov.acquire()
            if n % 10 < 4:
                gov.on_success()
            vt.advance(0.1)

    await vt.run(ten_per_second_four_accepted())
    gov.on_rate_limited()
    # 4 of 10 requests per second were accepted: 90 % of that.
    assert gov.rate == pytest.approx(0.9 * 4.0, rel=0.1)


@pytest.mark.asyncio
async def test_first_decrease_in_the_first_second_counts_one_second(vt: VirtualTime) -> None:
    gov = governor(vt)
    for _ in range(5):
        await gov.acquire()
        gov.on_success()
    vt.advance(0.01)
    gov.on_rate_limited()
    # Five answers within the first instant: five per (at least one) second.
    assert gov.rate == pytest.approx(4.5)


def test_decrease_without_any_success_starts_at_one_per_second(vt: VirtualTime) -> None:
    gov = governor(vt)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(0.9)


@pytest.mark.asyncio
async def test_decrease_ignores_old_successes(vt: VirtualTime) -> None:
    gov = governor(vt)
    for _ in range(100):
        await gov.acquire()
        gov.on_success()
    vt.advance(60.0)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(0.9)


@pytest.mark.asyncio
async def test_stale_answers_do_not_decrease_again(vt: VirtualTime) -> None:
    gov = governor(vt, rate=4.0, burst=4)
    sent = await vt.run(*(gov.acquire() for _ in range(4)))
    vt.advance(0.5)
    gov.on_rate_limited(sent_at=sent[0])
    assert gov.rate == pytest.approx(2.8)
    pause = gov.on_rate_limited(sent_at=sent[1])
    gov.on_rate_limited(sent_at=sent[2])
    assert gov.rate == pytest.approx(2.8)
    assert pause == 1.0  # a stale answer does not grow the cooldown either
    assert gov.stats().rate_limited == 3

    (later,) = await vt.run(gov.acquire())
    assert later > sent[3]
    gov.on_rate_limited(sent_at=later)
    assert gov.rate == pytest.approx(1.96)


def test_answers_without_sent_at_always_count(vt: VirtualTime) -> None:
    gov = governor(vt, rate=4.0)
    gov.on_rate_limited()
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(1.96)


def test_additive_recovery_never_above_configured_rate(vt: VirtualTime) -> None:
    gov = governor(vt, rate=2.0, recovery=0.2)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(1.4)
    seen = [gov.rate]
    for _ in range(200):
        gov.on_success()
        seen.append(gov.rate)
    rates = [r for r in seen if r is not None]
    assert len(rates) == len(seen)
    assert all(later >= earlier for earlier, later in itertools.pairwise(rates))
    assert max(rates) == 2.0
    assert gov.rate == 2.0


def test_recovery_step_is_gradual(vt: VirtualTime) -> None:
    gov = governor(vt, rate=2.0, recovery=0.2)
    gov.on_rate_limited()
    gov.on_success()
    # One success adds recovery / rate: at 1.4 req/s, 0.2 req/s per second.
    assert gov.rate == pytest.approx(1.4 + 0.2 / 1.4)


def test_success_at_configured_rate_changes_nothing(vt: VirtualTime) -> None:
    gov = governor(vt, rate=3.0)
    gov.on_success()
    assert gov.rate == 3.0


def test_success_without_rate_changes_nothing(vt: VirtualTime) -> None:
    gov = governor(vt)
    gov.on_success()
    assert gov.rate is None


def test_recovery_after_the_first_decrease_keeps_growing(vt: VirtualTime) -> None:
    gov = governor(vt)
    gov.on_rate_limited()
    assert gov.rate == pytest.approx(0.9)
    for _ in range(10):
        gov.on_success()
    assert gov.rate is not None
    assert gov.rate > 0.9


@pytest.mark.asyncio
async def test_decrease_slows_pacing(vt: VirtualTime) -> None:
    gov = governor(vt, rate=5.0, cooldown=0.0)
    gov.on_rate_limited()
    (times,) = await vt.run(acquire_many(gov, 3))
    assert times == pytest.approx([T0, T0 + 1 / 3.5, T0 + 2 / 3.5])


# --- stats, repr, arguments ----------------------------------------------------------------------


def test_stats_snapshot(vt: VirtualTime) -> None:
    gov = governor(vt, rate=4.0)
    gov.on_rate_limited()
    stats = gov.stats()
    assert isinstance(stats, GovernorStats)
    assert stats == GovernorStats(rate=pytest.approx(2.8), rate_limited=1, cooldowns=1, waited=0.0)
    gov.on_rate_limited()
    assert stats.rate == pytest.approx(2.8)  # a snapshot, not a live view


def test_repr(vt: VirtualTime) -> None:
    assert repr(governor(vt)) == "<RateGovernor rate=unlimited adaptive=True>"
    assert repr(governor(vt, rate=2.5, adaptive=False)) == (
        "<RateGovernor rate=2.5/s adaptive=False>"
    )


@pytest.mark.parametrize("rate", [0, 0.0, -1.0, math.nan, math.inf])
def test_invalid_rate_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="'rate' must be > 0"):
        RateGovernor(rate=rate)


@pytest.mark.parametrize("burst", [0, -2])
def test_invalid_burst_refused(burst: int) -> None:
    with pytest.raises(ValueError, match="'burst' must be >= 1"):
        RateGovernor(burst=burst)


@pytest.mark.parametrize("max_cooldown", [-1.0, math.nan])
def test_invalid_max_cooldown_refused(max_cooldown: float) -> None:
    with pytest.raises(ValueError, match="max_cooldown"):
        RateGovernor(max_cooldown=max_cooldown)


def test_default_clock_and_sleep_are_real() -> None:
    gov = RateGovernor()
    assert gov.rate is None
    assert gov.stats().waited == 0.0
