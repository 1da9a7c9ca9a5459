"""The rate governor (:mod:`memories_async._governor`) on virtual time, state in memory.

Covers the arguments and their errors; slots at a fixed rate (spacing of
sequential and concurrent callers, burst, ``try_acquire``, first come first
served, cancelled waiters); no limit at all; a server's pause (``Retry-After``)
and refusals that pause nobody; the counters of :meth:`RateGovernor.stats`,
the repr and the properties; how answers reach the adaptive rules (the first
request says nothing, a success only doubles the rate while callers wait);
and, end to end, convergence of a client against a model strict token bucket
(burst 1, a refused request takes no token, 80 ms latency), asserting
outcomes (all requests pass, few refusals, wall time near the quota's)
rather than exact numbers. The rules themselves are tested in
``test_quota.py``; a state shared through Redis (``store=``) elsewhere.

Every test runs on a :class:`~tests._virtual.VirtualEventLoop`: the
governor's clock is the loop's, and the real ``asyncio.sleep`` sleeps on
virtual time, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Iterator
from typing import Any, cast

import attrs
import pytest

from memories_async import GovernorStats, RateGovernor
from memories_async._governor import SLACK
from memories_async._quota import START_RATE, slot_interval
from memories_async._ratestore import RedisRateStore

from ._virtual import T0, TokenBucket, VirtualEventLoop, run_jobs


def interval(rate: float) -> float:
    """Seconds between slots at ``rate``."""
    return slot_interval(rate)


I5 = interval(5.0)

FIXED_5 = [
    pytest.param({"rate": 5, "adaptive": False}, id="fixed"),
    pytest.param({"rate": 5}, id="adaptive"),
]


@pytest.fixture
def vloop() -> Iterator[VirtualEventLoop]:
    loop = VirtualEventLoop()
    try:
        yield loop
    finally:
        loop.close()


def governor(vloop: VirtualEventLoop, **options: Any) -> RateGovernor:
    return RateGovernor(clock=vloop.time, **options)


async def acquire_many(gov: RateGovernor, n: int) -> list[float]:
    """``n`` acquires one after the other."""
    return [await gov.acquire() for _ in range(n)]


async def acquire_together(gov: RateGovernor, n: int) -> list[float]:
    """``n`` acquires at once, results in the order they were called."""
    return list(await asyncio.gather(*(gov.acquire() for _ in range(n))))


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, True, "5"])
def test_invalid_rate_refused(rate: object) -> None:
    message = f"'rate' must be a number > 0 or None, got {rate!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RateGovernor(rate=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [0, -1, 1.5, True, "2", None])
def test_invalid_burst_refused(burst: object) -> None:
    message = f"'burst' must be a whole number >= 1, got {burst!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RateGovernor(burst=burst)  # type: ignore[arg-type]


def test_store_without_key_refused() -> None:
    store = cast(RedisRateStore, object())
    with pytest.raises(ValueError, match=r"^a shared 'store' needs the 'key' of the quota$"):
        RateGovernor(store=store)


@pytest.mark.parametrize("rate", [1, 0.001, 2.5, 1e6, None])
def test_valid_rates(rate: float | None) -> None:
    gov = RateGovernor(rate=rate, burst=100)
    assert gov.ceiling == rate
    assert gov.rate == (START_RATE if rate is None else rate)


def test_default_clock_and_sleep_are_real() -> None:
    gov = RateGovernor(adaptive=False)
    before = time.monotonic()
    sent = asyncio.run(gov.acquire())
    assert before <= sent <= time.monotonic()


# --- slots at a fixed rate -----------------------------------------------------------------------


@pytest.mark.parametrize("options", FIXED_5)
def test_sequential_acquires_are_spaced_by_the_interval(
    vloop: VirtualEventLoop, options: dict[str, Any]
) -> None:
    gov = governor(vloop, **options)
    times = vloop.run_until_complete(acquire_many(gov, 6))
    assert times == pytest.approx([T0 + k * I5 for k in range(6)])
    # Each call started when the previous one returned.
    assert gov.stats().waited == pytest.approx(5 * I5)
    assert gov.rate == 5


@pytest.mark.parametrize("options", FIXED_5)
def test_concurrent_acquires_are_spaced_by_the_interval(
    vloop: VirtualEventLoop, options: dict[str, Any]
) -> None:
    gov = governor(vloop, **options)
    times = vloop.run_until_complete(acquire_together(gov, 6))
    assert times == pytest.approx([T0 + k * I5 for k in range(6)])
    assert gov.stats().waited == pytest.approx(sum(k * I5 for k in range(6)))


@pytest.mark.parametrize("burst", [2, 3, 10])
def test_burst_after_idle_and_never_more(vloop: VirtualEventLoop, burst: int) -> None:
    gov = governor(vloop, rate=5, adaptive=False, burst=burst)

    async def main() -> tuple[list[float], list[float], list[float]]:
        first = await acquire_together(gov, burst + 3)
        await asyncio.sleep(100.0)
        after_idle = await acquire_together(gov, burst + 2)
        # Idle for exactly a burst's worth of slots: the whole burst again.
        await asyncio.sleep(burst * I5)
        again = await acquire_together(gov, burst + 1)
        return first, after_idle, again

    first, after_idle, again = vloop.run_until_complete(main())
    assert first == pytest.approx([T0] * burst + [T0 + k * I5 for k in (1, 2, 3)])
    idle_end = first[-1] + 100.0
    assert after_idle == pytest.approx([idle_end] * burst + [idle_end + I5, idle_end + 2 * I5])
    rested = after_idle[-1] + burst * I5
    assert again == pytest.approx([rested] * burst + [rested + I5])


def test_try_acquire_takes_a_slot_only_when_free(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def main() -> None:
        assert gov.try_acquire() == T0
        assert gov.try_acquire() is None
        await asyncio.sleep(I5 * 0.99)
        assert gov.try_acquire() is None
        await asyncio.sleep(I5 * 0.02)
        taken = gov.try_acquire()
        assert taken == vloop.time()
        # The slot taken by try_acquire is not given to acquire.
        assert await gov.acquire() == pytest.approx(taken + I5)

    vloop.run_until_complete(main())


def test_try_acquire_never_overtakes_a_waiter(vloop: VirtualEventLoop) -> None:
    release = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await release.wait()

    gov = RateGovernor(rate=5, adaptive=False, clock=vloop.time, sleep=held_sleep)

    async def main() -> None:
        assert gov.try_acquire() == T0
        waiter = asyncio.create_task(gov.acquire())
        await asyncio.sleep(1.0)  # the slot is free by now, but the waiter has not woken
        assert gov.try_acquire() is None
        release.set()
        assert await waiter == T0 + 1.0
        assert gov.try_acquire() is None  # the waiter took that slot
        await asyncio.sleep(I5 * 1.01)
        assert gov.try_acquire() == vloop.time()

    vloop.run_until_complete(main())


def test_waiters_are_served_first_come_first_served(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)
    served: list[tuple[int, float]] = []

    async def caller(k: int) -> None:
        await asyncio.sleep(k * I5 / 10)  # all arrive within the first interval
        sent = gov.try_acquire()
        if sent is None:
            sent = await gov.acquire()
        served.append((k, sent))

    async def main() -> None:
        await asyncio.gather(*(caller(k) for k in reversed(range(8))))

    vloop.run_until_complete(main())
    assert [k for k, _ in served] == list(range(8))
    assert [sent for _, sent in served] == pytest.approx([T0 + k * I5 for k in range(8)])


def test_cancelled_waiters_lose_no_slot_for_others(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def main() -> list[float]:
        first = await gov.acquire()
        sleeping = asyncio.create_task(gov.acquire())  # holds the lock, sleeps for its slot
        queued = asyncio.create_task(gov.acquire())  # waits for the lock
        later = [asyncio.create_task(gov.acquire()) for _ in range(2)]
        await asyncio.sleep(I5 / 2)
        sleeping.cancel()
        queued.cancel()
        for task in (sleeping, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        times = [first, *[await task for task in later]]
        await asyncio.sleep(I5 * 1.01)
        assert gov.try_acquire() == vloop.time()  # nobody is left waiting
        return times

    times = vloop.run_until_complete(main())
    assert times == pytest.approx([T0, T0 + I5, T0 + 2 * I5])
    # Only the acquires that returned count as waiting.
    assert gov.stats().waited == pytest.approx(I5 + 2 * I5)


def test_waiters_whose_slots_are_due_are_all_served_in_one_turn(vloop: VirtualEventLoop) -> None:
    # Handing the slots over one waiter at a time admits one request per turn of the
    # event loop: a busy client whose queue formed once (in slow start) then stayed
    # queued behind its own pacing, at a third of the rate in force. At a million a
    # second, the slots of 40 waiters fall within the slack: all are due at once.
    gov = governor(vloop, rate=1e6, adaptive=False)

    async def main() -> None:
        assert gov.try_acquire() == T0
        waiters = [asyncio.create_task(gov.acquire()) for _ in range(40)]
        await asyncio.sleep(0)
        assert gov.try_acquire() is None  # queued behind the waiters
        for _ in range(2):  # the pacer's turn, then the waiters'
            await asyncio.sleep(0)
        assert all(w.done() for w in waiters)
        assert {w.result() for w in waiters} == {T0}
        # Once every waiter is served, a newcomer takes a free slot without queueing.
        assert gov.try_acquire() == vloop.time()

    vloop.run_until_complete(main())


# --- no limit ------------------------------------------------------------------------------------


def test_unlimited_never_waits(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, adaptive=False)

    async def main() -> tuple[list[float], list[float]]:
        return await acquire_many(gov, 50), await acquire_together(gov, 20)

    sequential, concurrent = vloop.run_until_complete(main())
    assert sequential == [T0] * 50
    assert concurrent == [T0] * 20
    assert gov.try_acquire() == T0
    assert vloop.time() == T0
    assert gov.rate is None
    assert gov.ceiling is None
    # Refusals (even in a row) and successes change nothing.
    assert gov.on_rate_limited() == 0.0
    assert gov.on_rate_limited(sent_at=T0) == 0.0
    gov.on_success(sent_at=T0)
    assert gov.try_acquire() == T0
    assert gov.stats() == GovernorStats(
        rate=None,
        accepted=1,
        refused=2,
        accepted_rate=0.0,
        waited=0.0,
        pauses=0,
        rate_changes=0,
    )


# --- a server's pause ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"adaptive": False}, [3.0] * 4, id="unlimited"),
        pytest.param({"rate": 5, "adaptive": False}, [3.0 + k * I5 for k in range(4)], id="5/s"),
        pytest.param({}, [3.0 + k * I5 for k in range(4)], id="adaptive"),
    ],
)
def test_retry_after_pauses_every_caller(
    vloop: VirtualEventLoop, options: dict[str, Any], expected: list[float]
) -> None:
    gov = governor(vloop, **options)

    async def main() -> list[float]:
        sent = await gov.acquire()
        assert gov.on_rate_limited(sent_at=sent, retry_after=3.0) == 3.0
        assert gov.try_acquire() is None
        return await acquire_together(gov, 4)

    times = vloop.run_until_complete(main())
    assert times == pytest.approx([T0 + seconds for seconds in expected])
    stats = gov.stats()
    assert (stats.pauses, stats.refused, stats.accepted) == (1, 1, 0)
    assert stats.waited == pytest.approx(sum(expected))


def test_pause_started_mid_wait_holds_the_waiter(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def pause_later() -> None:
        await asyncio.sleep(I5 / 2)
        gov.pause(2.0)

    async def main() -> list[float]:
        first = await gov.acquire()
        second, _ = await asyncio.gather(gov.acquire(), pause_later())
        return [first, second]

    assert vloop.run_until_complete(main()) == pytest.approx([T0, T0 + I5 / 2 + 2.0])


def test_a_shorter_pause_does_not_shorten_a_longer_one(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, adaptive=False)

    async def main() -> float:
        gov.pause(10.0)
        await asyncio.sleep(2.0)
        assert gov.on_rate_limited(retry_after=1.0) == pytest.approx(8.0)
        gov.pause(0.5)
        return await gov.acquire()

    assert vloop.run_until_complete(main()) == pytest.approx(T0 + 10.0)
    assert gov.stats().pauses == 1


def test_pauses_counts_pauses_started_not_extended(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, adaptive=False)

    async def main() -> list[float]:
        gov.pause(2.0)
        await asyncio.sleep(1.0)
        gov.pause(5.0)  # extends the pause under way: until T0 + 6
        first = await gov.acquire()
        gov.pause(1.0)  # a new one
        return [first, await gov.acquire()]

    assert vloop.run_until_complete(main()) == pytest.approx([T0 + 6.0, T0 + 7.0])
    assert gov.stats().pauses == 2


@pytest.mark.parametrize("retry_after", [None, 0.0, -1.0, math.nan])
@pytest.mark.parametrize("options", [*FIXED_5, pytest.param({}, id="defaults")])
def test_a_refusal_without_retry_after_pauses_nobody(
    vloop: VirtualEventLoop, options: dict[str, Any], retry_after: float | None
) -> None:
    gov = governor(vloop, **options)

    async def main() -> list[float]:
        sent = await gov.acquire()
        assert gov.on_rate_limited(sent_at=sent, retry_after=retry_after) == 0.0
        gov.pause(retry_after or 0.0)
        # The refused request takes the next free slot: no later.
        return [sent, *await acquire_together(gov, 3)]

    times = vloop.run_until_complete(main())
    assert times == pytest.approx([T0 + k * I5 for k in range(4)])
    assert gov.stats().pauses == 0


@pytest.mark.parametrize(("draw", "shift"), [(1.0, I5 / 2), (0.5, I5 / 4), (0.0, 0.0)])
def test_refusals_in_a_row_shift_the_next_slot_at_random(
    vloop: VirtualEventLoop, draw: float, shift: float
) -> None:
    # A governor finding the quota alone (no configured rate), at 5/s to start.
    gov = governor(vloop, random=lambda: draw)

    async def main() -> list[float]:
        first = await gov.acquire()
        gov.on_rate_limited(sent_at=first)  # one refusal: no shift
        second = await gov.acquire()
        gov.on_rate_limited(sent_at=second)  # two in a row: shifted (and 5/s is refused)
        third = await gov.acquire()
        gov.on_success(sent_at=third)  # a success ends the row
        gov.on_rate_limited(sent_at=third)
        fourth = await gov.acquire()
        return [first, second, third, fourth]

    times = vloop.run_until_complete(main())
    assert gov.rate == START_RATE  # refused at the start rate: judged over an interval
    expected = [T0, T0 + I5, T0 + 2 * I5 + shift, T0 + 3 * I5 + shift]
    assert times == pytest.approx(expected)
    assert gov.stats().pauses == 0


def test_with_a_configured_rate_refusals_never_shift_the_slots(vloop: VirtualEventLoop) -> None:
    # Refusals at a configured rate come from others: a shift would only cost time.
    gov = governor(vloop, rate=5, adaptive=False, random=lambda: 1.0)

    async def main() -> list[float]:
        times = []
        for _ in range(4):
            sent = await gov.acquire()
            gov.on_rate_limited(sent_at=sent)
            times.append(sent)
        return times

    times = vloop.run_until_complete(main())
    assert times == pytest.approx([T0 + k * I5 for k in range(4)])


# --- stats, repr, properties ---------------------------------------------------------------------


def test_stats_of_a_new_governor(vloop: VirtualEventLoop) -> None:
    stats = governor(vloop).stats()
    assert stats == GovernorStats(
        rate=START_RATE,
        accepted=0,
        refused=0,
        accepted_rate=0.0,
        waited=0.0,
        pauses=0,
        rate_changes=0,
        shared=False,
    )
    assert stats.refused_share == 0.0


def test_stats_count_answers_waits_and_rates(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def main() -> None:
        sent = await gov.acquire()
        gov.on_success(sent_at=sent)
        assert gov.stats().accepted_rate == 0.0  # one answer is no rate
        for _ in range(10):
            gov.on_success(sent_at=await gov.acquire())
        for _ in range(3):
            gov.on_rate_limited(sent_at=sent)

    vloop.run_until_complete(main())
    stats = gov.stats()
    assert (stats.accepted, stats.refused, stats.rate, stats.rate_changes) == (11, 3, 5, 0)
    assert stats.refused_share == pytest.approx(3 / 14)
    assert stats.waited == pytest.approx(10 * I5)
    # Accepted answers per second since the first request.
    assert stats.accepted_rate == pytest.approx(11 / (10 * I5))


def test_stats_are_a_frozen_snapshot(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, adaptive=False)
    stats = gov.stats()
    gov.on_rate_limited()
    assert stats.refused == 0
    assert gov.stats().refused == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.refused = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, "<RateGovernor rate=5/s adaptive=True>"),
        ({"adaptive": False}, "<RateGovernor rate=unlimited adaptive=False>"),
        (
            {"rate": 2.5, "adaptive": False},
            "<RateGovernor rate=2.5/s ceiling=2.5/s adaptive=False>",
        ),
        ({"rate": 1}, "<RateGovernor rate=1/s ceiling=1/s adaptive=True>"),
    ],
)
def test_repr(options: dict[str, Any], shown: str) -> None:
    assert repr(RateGovernor(**options)) == shown


def test_repr_hides_a_store_password() -> None:
    store = RedisRateStore("redis://user:hunter2@localhost:6379/0")
    shown = repr(RateGovernor(store=store, key="memories-async:quota:test"))
    assert "hunter2" not in shown
    assert "store=redis://user:***@localhost:6379/0" in shown


def test_memory_state_is_not_shared(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop)

    async def main() -> None:
        await gov.check()
        await gov.aclose()

    vloop.run_until_complete(main())
    assert not gov.shared
    assert not gov.stats().shared


def test_answered_records_answers_in_memory(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def main() -> float:
        sent = await gov.acquire()
        await gov.answered(sent_at=sent, refused=False)
        await gov.answered(sent_at=sent, refused=True, retry_after=2.0)
        return await gov.acquire()

    assert vloop.run_until_complete(main()) == pytest.approx(T0 + 2.0)
    stats = gov.stats()
    assert (stats.accepted, stats.refused, stats.pauses) == (1, 1, 1)


# --- answers reaching the adaptive rules ---------------------------------------------------------


@pytest.mark.parametrize("refused", [False, True])
def test_the_first_request_says_nothing_of_the_rate(vloop: VirtualEventLoop, refused: bool) -> None:
    gov = governor(vloop)

    async def main() -> None:
        sent = await gov.acquire()
        # Callers are waiting, but the first request was spaced from nothing.
        waiting = asyncio.create_task(gov.acquire())
        await asyncio.sleep(0)
        if refused:
            gov.on_rate_limited(sent_at=sent)
        else:
            gov.on_success(sent_at=sent)
        await waiting

    vloop.run_until_complete(main())
    assert gov.rate == START_RATE
    assert gov.stats().rate_changes == 0


@pytest.mark.parametrize("binding", [False, True])
def test_slow_start_doubles_only_while_callers_wait(vloop: VirtualEventLoop, binding: bool) -> None:
    gov = governor(vloop)

    async def main() -> None:
        first, second = await acquire_many(gov, 2)
        gov.on_success(sent_at=first)
        waiting = asyncio.create_task(gov.acquire()) if binding else None
        await asyncio.sleep(0)
        gov.on_success(sent_at=second)  # without callers waiting, 5/s is enough
        if waiting is not None:
            await waiting

    vloop.run_until_complete(main())
    assert gov.rate == (2 * START_RATE if binding else START_RATE)
    assert gov.stats().rate_changes == binding


def test_a_refusal_at_the_start_rate_ends_slow_start_there(vloop: VirtualEventLoop) -> None:
    # The start rate is the highest documented quota: one refusal there may be
    # another's, so it stays, and its refusals are judged over an interval.
    gov = governor(vloop)

    async def main() -> list[float]:
        first, second = await acquire_many(gov, 2)
        gov.on_rate_limited(sent_at=second)
        assert gov.rate == START_RATE
        return [first, second, *await acquire_many(gov, 2)]

    times = vloop.run_until_complete(main())
    assert times == pytest.approx([T0 + k * I5 for k in range(4)])
    assert gov.stats().rate_changes == 0


def test_a_refusal_above_the_start_rate_falls_to_the_documented_quota(
    vloop: VirtualEventLoop,
) -> None:
    gov = governor(vloop)

    async def main() -> list[float]:
        first, second = await acquire_many(gov, 2)
        gov.on_success(sent_at=first)
        waiting = asyncio.create_task(gov.acquire())
        await asyncio.sleep(0)
        gov.on_success(sent_at=second)  # callers wait: slow start goes to 10/s
        assert gov.rate == 2 * START_RATE
        third, fourth = await waiting, await gov.acquire()
        gov.on_rate_limited(sent_at=fourth)  # sent 0.1 s after the slot before it
        assert gov.rate == START_RATE
        return [third, fourth, *await acquire_many(gov, 2)]

    third, fourth, fifth, sixth = vloop.run_until_complete(main())
    assert fourth - third == pytest.approx(interval(2 * START_RATE))
    assert sixth - fifth == pytest.approx(I5)
    assert gov.stats().rate_changes == 2


def test_a_fixed_governor_never_adapts(vloop: VirtualEventLoop) -> None:
    gov = governor(vloop, rate=5, adaptive=False)

    async def main() -> None:
        for k in range(40):
            sent = await gov.acquire()
            if k % 2:
                gov.on_rate_limited(sent_at=sent)
            else:
                gov.on_success(sent_at=sent)

    vloop.run_until_complete(main())
    assert gov.rate == 5
    assert gov.stats().rate_changes == 0


# --- convergence against a model strict quota ----------------------------------------------------


def converge(
    vloop: VirtualEventLoop,
    qps: float | None,
    *,
    jobs: int,
    refuse_share: float = 0.0,
    seed: int = 11,
    **options: Any,
) -> tuple[float, TokenBucket, GovernorStats]:
    """Send ``jobs`` requests at concurrency 16 to a bucket of ``qps``: (wall, bucket, stats)."""
    gov = governor(vloop, random=random.Random(seed).random, **options)
    bucket = TokenBucket(
        qps, start=vloop.time(), refuse_share=refuse_share, rng=random.Random(seed + 1)
    )
    wall = vloop.run_until_complete(run_jobs(gov, bucket, jobs=jobs, rng=random.Random(seed + 2)))
    stats = gov.stats()
    assert bucket.accepted == stats.accepted == jobs
    assert bucket.refused == stats.refused
    return wall, bucket, stats


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_defaults_converge_on_a_5_qps_quota(vloop: VirtualEventLoop, seed: int) -> None:
    wall, bucket, stats = converge(vloop, 5.0, jobs=100, seed=seed)
    assert bucket.refused <= 8
    assert wall <= 99 / 5 / 0.9
    assert stats.rate is not None
    assert stats.rate <= 5.0


@pytest.mark.parametrize("options", FIXED_5)
def test_the_right_rate_is_never_refused(vloop: VirtualEventLoop, options: dict[str, Any]) -> None:
    wall, bucket, _ = converge(vloop, 5.0, jobs=100, **options)
    assert bucket.refused == 0
    assert wall <= 99 / 5 / 0.97


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_defaults_converge_on_a_1_qps_quota(vloop: VirtualEventLoop, seed: int) -> None:
    wall, _, stats = converge(vloop, 1.0, jobs=30, seed=seed)
    assert wall <= 29 / 0.88
    assert stats.rate == 1.0


def test_without_a_limit_slow_start_finds_it_out(vloop: VirtualEventLoop) -> None:
    wall, bucket, stats = converge(vloop, None, jobs=2000)
    assert bucket.refused == 0
    assert stats.rate is not None
    assert stats.rate > 16 / 0.08  # faster than the client can send
    # As fast as 16 callers with 80 ms of latency can go, nearly.
    assert wall <= 1.1 * 2000 / 16 * 0.08 + 1


@pytest.mark.parametrize("seed", range(1, 12))
def test_random_refusals_do_not_collapse_the_rate(vloop: VirtualEventLoop, seed: int) -> None:
    clean, _, _ = converge(vloop, None, jobs=2000)
    wall, bucket, stats = converge(vloop, None, jobs=2000, refuse_share=0.2, seed=seed)
    assert 0.15 < bucket.refused / (bucket.refused + bucket.accepted) < 0.25
    assert wall <= 2.5 * clean
    assert stats.rate is not None
    assert stats.rate > 50


def test_at_a_high_rate_slots_due_within_the_slack_are_taken_at_once(
    vloop: VirtualEventLoop,
) -> None:
    # The event loop cannot sleep a few microseconds: slots that close are taken
    # now, or a rate of 100,000/s would be capped near 1,000/s by the sleeps.
    gov = governor(vloop, rate=100_000, adaptive=False)
    assert slot_interval(100_000) < SLACK
    taken = 0
    while gov.try_acquire() is not None:
        taken += 1
    # A millisecond's worth of slots, then it waits: the rate holds over time.
    assert taken == pytest.approx(SLACK / slot_interval(100_000), abs=2)
    # At a strict quota's rates a slot is never taken early, not even by the slack.
    now = [T0]
    at_50 = RateGovernor(rate=50, adaptive=False, clock=lambda: now[0])
    assert at_50.try_acquire() == T0
    now[0] += slot_interval(50) - SLACK / 2
    assert at_50.try_acquire() is None
    now[0] += SLACK / 2
    assert at_50.try_acquire() == now[0]
