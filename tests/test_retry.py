"""The retry loop: which errors are retried, how often, how long it waits, what it reports."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence

import pytest

from memories_async import (
    AuthenticationError,
    DecodeError,
    HTTPStatusError,
    InvalidParameterError,
    MemoriesError,
    RateLimitError,
    RetryPolicy,
    TransientAPIError,
    TransportError,
)
from memories_async._errors import api_error
from memories_async._retry import OnRetry, Retrying

from .conftest import FakeTime

NO_WAIT = RetryPolicy(backoff=False)


class Script:
    """An attempt function that fails with ``errors`` in turn, then returns ``result``."""

    def __init__(
        self,
        errors: Sequence[BaseException],
        result: str = "done",
        *,
        time: FakeTime | None = None,
        cost: float = 0.0,
    ) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls: list[int] = []
        self.time = time
        self.cost = cost

    async def __call__(self, attempt: int) -> str:
        self.calls.append(attempt)
        if self.time is not None:
            self.time.now += self.cost
        if len(self.calls) <= len(self.errors):
            raise self.errors[len(self.calls) - 1]
        return self.result


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[MemoriesError, int, float]] = []

    def __call__(self, error: MemoriesError, attempt: int, wait: float) -> None:
        self.calls.append((error, attempt, wait))

    @property
    def waits(self) -> list[float]:
        return [w for _, _, w in self.calls]


async def run(
    script: Script,
    policy: RetryPolicy = NO_WAIT,
    *,
    on_retry: OnRetry | None = None,
    time: FakeTime | None = None,
    random: Callable[[], float] = lambda: 0.5,
) -> tuple[str, int]:
    """Run ``script`` through the retry loop as the client does, on virtual time."""
    time = time or script.time or FakeTime()
    retrying = Retrying(policy, clock=time.clock, sleep=time.sleep, random=random)
    return await retrying(script, on_retry)


def transport() -> TransportError:
    return TransportError("connection reset", video_no="VI1", endpoint="ep")


def rate_limited() -> RateLimitError:
    error = api_error("0429", "Request has exceeded the limit.")
    assert isinstance(error, RateLimitError)
    return error


def transient() -> TransientAPIError:
    error = api_error("0001", "network abnormal")
    assert isinstance(error, TransientAPIError)
    return error


# --- outcomes ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_success_first_try() -> None:
    script = Script([])
    on_retry = Recorder()
    assert await run(script, NO_WAIT, on_retry=on_retry) == ("done", 1)
    assert script.calls == [1]
    assert on_retry.calls == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        TransportError("reset"),
        HTTPStatusError("HTTP 503", status=503),
        HTTPStatusError("HTTP 408", status=408),
        DecodeError("truncated", retryable=True),
        api_error("0001", "network abnormal"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_retryable_error_then_success(error: MemoriesError) -> None:
    script = Script([error])
    assert await run(script, NO_WAIT) == ("done", 2)
    assert script.calls == [1, 2]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        api_error("0003", "bad parameter"),
        api_error("0409", "duplicate"),
        api_error("0401", "bad key"),
        api_error("0402", "no credits"),
        api_error("7777", "unknown"),
        HTTPStatusError("HTTP 404", status=404),
        DecodeError("wrong field", field="$.x"),
        MemoriesError("plain"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_non_retryable_raised_immediately(error: MemoriesError) -> None:
    script = Script([error, transport()])
    on_retry = Recorder()
    with pytest.raises(type(error)) as info:
        await run(script, NO_WAIT, on_retry=on_retry)
    assert info.value is error
    assert info.value.attempts == 1
    assert script.calls == [1]
    assert on_retry.calls == []


@pytest.mark.asyncio
@pytest.mark.parametrize("attempts", [1, 2, 5])
async def test_attempts_exhausted_reraises_last_error(attempts: int) -> None:
    errors = [TransportError(f"reset {n}") for n in range(10)]
    script = Script(errors)
    with pytest.raises(TransportError) as info:
        await run(script, RetryPolicy(attempts=attempts, backoff=False))
    assert info.value is errors[attempts - 1]
    assert info.value.attempts == attempts
    assert script.calls == list(range(1, attempts + 1))


@pytest.mark.asyncio
async def test_non_retryable_after_retries_reports_attempts() -> None:
    final = InvalidParameterError("bad", code="0003", msg="bad")
    script = Script([transport(), transport(), final])
    with pytest.raises(InvalidParameterError) as info:
        await run(script, NO_WAIT)
    assert info.value is final
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_account_error_stops_retrying() -> None:
    script = Script([transport(), api_error("0401", "bad key")])
    with pytest.raises(AuthenticationError) as info:
        await run(script, NO_WAIT)
    assert info.value.attempts == 2


@pytest.mark.asyncio
async def test_foreign_exception_propagates_untouched() -> None:
    script = Script([KeyError("boom")])
    with pytest.raises(KeyError):
        await run(script, NO_WAIT)
    assert script.calls == [1]


@pytest.mark.asyncio
async def test_foreign_exception_during_retries_propagates() -> None:
    script = Script([transport(), RuntimeError("boom")])
    with pytest.raises(RuntimeError, match="boom"):
        await run(script, NO_WAIT)
    assert script.calls == [1, 2]


# --- budgets -------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("attempts", "transient_attempts", "expected"), [(5, 3, 3), (5, 1, 1), (2, 5, 2), (4, 4, 4)]
)
async def test_transient_errors_limited_by_transient_attempts(
    attempts: int, transient_attempts: int, expected: int
) -> None:
    script = Script([transient() for _ in range(10)])
    policy = RetryPolicy(attempts=attempts, transient_attempts=transient_attempts, backoff=False)
    with pytest.raises(TransientAPIError) as info:
        await run(script, policy)
    assert info.value.attempts == expected
    assert len(script.calls) == expected


@pytest.mark.asyncio
async def test_transient_errors_share_the_attempts_budget() -> None:
    script = Script([transport(), transport(), transient(), transient()])
    policy = RetryPolicy(attempts=3, transient_attempts=3, backoff=False)
    with pytest.raises(TransientAPIError) as info:
        await run(script, policy)
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_transient_then_success() -> None:
    script = Script([transient(), transient()])
    policy = RetryPolicy(transient_attempts=3, backoff=False)
    assert await run(script, policy) == ("done", 3)


@pytest.mark.asyncio
async def test_rate_limits_do_not_use_up_attempts() -> None:
    script = Script([rate_limited() for _ in range(6)])
    policy = RetryPolicy(attempts=2, backoff=False)
    assert await run(script, policy) == ("done", 7)


@pytest.mark.asyncio
async def test_http_429_does_not_use_up_attempts() -> None:
    script = Script([HTTPStatusError("HTTP 429", status=429) for _ in range(4)])
    policy = RetryPolicy(attempts=2, backoff=False)
    assert await run(script, policy) == ("done", 5)


@pytest.mark.asyncio
async def test_rate_limits_between_failures() -> None:
    script = Script([transport(), rate_limited(), rate_limited(), transport()])
    policy = RetryPolicy(attempts=2, backoff=False)
    with pytest.raises(TransportError) as info:
        await run(script, policy)
    assert info.value.attempts == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_rate_limits_never_use_up_attempts(attempts: int) -> None:
    # A refusal by the quota is not a failure: 99 of them, then the answer.
    script = Script([rate_limited() for _ in range(99)])
    policy = RetryPolicy(attempts=attempts, backoff=False, total_timeout=None)
    assert await run(script, policy) == ("done", 100)


@pytest.mark.asyncio
async def test_total_timeout_stops_retrying() -> None:
    fake = FakeTime()
    script = Script([transport() for _ in range(10)], time=fake, cost=10.0)
    policy = RetryPolicy(attempts=10, total_timeout=25.0, backoff=False)
    with pytest.raises(TransportError) as info:
        await run(script, policy)
    # Attempts end at 10 s, 20 s and 30 s; nothing starts after 25 s.
    assert info.value.attempts == 3
    assert len(script.calls) == 3


@pytest.mark.asyncio
async def test_total_timeout_passed_on_first_attempt() -> None:
    fake = FakeTime()
    script = Script([transport()], time=fake, cost=100.0)
    policy = RetryPolicy(total_timeout=30.0, backoff=False)
    with pytest.raises(TransportError) as info:
        await run(script, policy)
    assert info.value.attempts == 1


@pytest.mark.asyncio
async def test_total_timeout_stops_rate_limit_retries() -> None:
    fake = FakeTime()
    script = Script([rate_limited() for _ in range(50)], time=fake, cost=4.0)
    policy = RetryPolicy(attempts=10, total_timeout=10.0, backoff=False)
    with pytest.raises(RateLimitError) as info:
        await run(script, policy)
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_no_total_timeout() -> None:
    fake = FakeTime()
    script = Script([transport() for _ in range(4)], time=fake, cost=1000.0)
    policy = RetryPolicy(attempts=5, total_timeout=None, backoff=False)
    assert await run(script, policy) == ("done", 5)


# --- waits ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_backoff_waits_only_for_retry_after() -> None:
    # backoff=False drops the back-off, not what the server asks for (RetryPolicy docs).
    fake = FakeTime()
    script = Script([transport(), HTTPStatusError("HTTP 503", status=503, retry_after=9.0)])
    on_retry = Recorder()
    assert await run(script, NO_WAIT, on_retry=on_retry, time=fake) == ("done", 3)
    assert on_retry.waits == [0.0, 9.0]
    assert fake.sleeps == [9.0]


@pytest.mark.asyncio
async def test_first_wait_is_jittered_initial_wait() -> None:
    fake = FakeTime()
    policy = RetryPolicy(initial_wait=2.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    result = await run(
        Script([transport()]), policy, on_retry=on_retry, random=lambda: 0.25, time=fake
    )
    assert result == ("done", 2)
    assert on_retry.waits == [0.5]
    assert fake.sleeps == [0.5]


@pytest.mark.asyncio
async def test_waits_stay_within_max_wait() -> None:
    fake = FakeTime()
    policy = RetryPolicy(attempts=8, initial_wait=1.0, max_wait=3.0, total_timeout=None)
    on_retry = Recorder()
    await run(
        Script([transport() for _ in range(7)]),
        policy,
        on_retry=on_retry,
        random=lambda: 0.999,
        time=fake,
    )
    assert len(on_retry.waits) == 7
    assert all(0.0 <= w < 3.0 for w in on_retry.waits)
    assert on_retry.waits[-1] == pytest.approx(3.0 * 0.999)
    assert fake.sleeps == on_retry.waits


@pytest.mark.asyncio
async def test_waits_grow() -> None:
    policy = RetryPolicy(attempts=5, initial_wait=1.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    await run(Script([transport() for _ in range(4)]), policy, on_retry=on_retry)
    waits = on_retry.waits
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    assert waits[-1] > waits[0]


@pytest.mark.asyncio
async def test_waits_follow_the_documented_exponential_ceiling() -> None:
    fake = FakeTime()
    policy = RetryPolicy(attempts=5, initial_wait=1.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    await run(
        Script([transport() for _ in range(4)]),
        policy,
        on_retry=on_retry,
        random=lambda: 0.5,
        time=fake,
    )
    # Before try n + 1: random * min(max_wait, initial_wait * 2 ** (n - 1)).
    assert (
        on_retry.waits
        == fake.sleeps
        == [policy.wait_before(n, random=0.5) for n in range(1, 5)]
        == [0.5, 1.0, 2.0, 4.0]
    )


@pytest.mark.asyncio
async def test_the_random_draw_is_only_for_a_back_off() -> None:
    # A Retry-After or a refusal needs no draw: the injected source is asked only for
    # a back-off, once per back-off.
    draws: list[float] = []

    def draw() -> float:
        draws.append(0.5)
        return 0.5

    errors = [
        HTTPStatusError("HTTP 503", status=503, retry_after=1.0),
        rate_limited(),
        transport(),
    ]
    await run(Script(errors), RetryPolicy(total_timeout=None), random=draw)
    assert draws == [0.5]


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [503, 500])
async def test_retry_after_is_the_wait(status: int) -> None:
    fake = FakeTime()
    error = HTTPStatusError(f"HTTP {status}", status=status, retry_after=7.0)
    on_retry = Recorder()
    result = await run(
        Script([error]),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        random=lambda: 0.0,
        time=fake,
    )
    assert result == ("done", 2)
    assert on_retry.waits == [7.0]
    assert fake.sleeps == [7.0]


@pytest.mark.asyncio
async def test_retry_after_on_later_attempt() -> None:
    fake = FakeTime()
    errors = [transport(), HTTPStatusError("HTTP 503", status=503, retry_after=11.0)]
    on_retry = Recorder()
    await run(
        Script(errors),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        random=lambda: 0.0,
        time=fake,
    )
    assert on_retry.waits == [0.0, 11.0]
    assert fake.sleeps == [11.0]  # a wait of 0 is no sleep


@pytest.mark.asyncio
async def test_wait_capped_by_total_timeout() -> None:
    fake = FakeTime()
    error = HTTPStatusError("HTTP 503", status=503, retry_after=60.0)
    on_retry = Recorder()
    await run(
        Script([error], time=fake, cost=4.0),
        RetryPolicy(total_timeout=10.0),
        on_retry=on_retry,
    )
    assert on_retry.waits == [pytest.approx(6.0)]
    assert fake.sleeps == [pytest.approx(6.0)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        api_error("0429", "Request has exceeded the limit."),
        HTTPStatusError("HTTP 429", status=429, retry_after=30.0),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_rate_limits_wait_in_the_governor_not_here(error: MemoriesError) -> None:
    fake = FakeTime()
    on_retry = Recorder()
    await run(
        Script([error]),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        random=lambda: 0.9,
        time=fake,
    )
    assert on_retry.waits == [0.0]
    assert fake.sleeps == []


def test_the_defaults_are_real_time() -> None:
    # What a client uses when its governor keeps the defaults too.
    retrying = Retrying(NO_WAIT)
    assert retrying.clock is time.monotonic
    assert retrying.sleep is asyncio.sleep
    assert retrying.random is random.random


# --- reporting -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_on_retry_called_once_per_retry() -> None:
    errors = [transport(), HTTPStatusError("HTTP 502", status=502), transient()]
    on_retry = Recorder()
    assert await run(Script(errors), NO_WAIT, on_retry=on_retry) == ("done", 4)
    assert [(e, a) for e, a, _ in on_retry.calls] == [
        (errors[0], 1),
        (errors[1], 2),
        (errors[2], 3),
    ]


@pytest.mark.asyncio
async def test_on_retry_not_called_when_giving_up() -> None:
    on_retry = Recorder()
    with pytest.raises(TransportError):
        await run(
            Script([transport() for _ in range(5)]),
            RetryPolicy(attempts=3, backoff=False),
            on_retry=on_retry,
        )
    assert [a for _, a, _ in on_retry.calls] == [1, 2]


@pytest.mark.asyncio
async def test_attempt_receives_its_number() -> None:
    script = Script([transport(), transport()])
    await run(script, NO_WAIT)
    assert script.calls == [1, 2, 3]


@pytest.mark.asyncio
async def test_warning_logged_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memories_async")
    errors = [transport(), HTTPStatusError("HTTP 503", status=503)]
    await run(Script(errors), NO_WAIT)
    records = [r for r in caplog.records if r.name == "memories_async"]
    assert len(records) == 2
    assert all(r.levelno == logging.WARNING for r in records)
    assert "attempt 1" in records[0].getMessage()
    assert "connection reset" in records[0].getMessage()
    assert "video_no=VI1" in records[0].getMessage()
    assert "attempt 2" in records[1].getMessage()
    assert "HTTP 503" in records[1].getMessage()


@pytest.mark.asyncio
async def test_nothing_logged_without_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memories_async")
    await run(Script([]), NO_WAIT)
    with pytest.raises(InvalidParameterError):
        await run(Script([api_error("0003", "bad")]), NO_WAIT)
    assert [r for r in caplog.records if r.name == "memories_async"] == []


@pytest.mark.asyncio
async def test_the_error_raised_is_not_chained_to_earlier_attempts() -> None:
    errors = [transport(), transport(), InvalidParameterError("bad", code="0003", msg="bad")]
    with pytest.raises(InvalidParameterError) as info:
        await run(Script(errors))
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


@pytest.mark.asyncio
async def test_a_cancelled_wait_cancels_the_call() -> None:
    started = asyncio.Event()

    async def forever(_seconds: float) -> None:
        started.set()
        await asyncio.Event().wait()

    script = Script([transport()])
    retrying = Retrying(RetryPolicy(total_timeout=None), sleep=forever, random=lambda: 0.5)
    task = asyncio.ensure_future(retrying(script))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.calls == [1]


@pytest.mark.asyncio
async def test_on_retry_is_called_with_warnings_silenced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="memories_async")
    on_retry = Recorder()
    assert await run(Script([transport()]), on_retry=on_retry) == ("done", 2)
    assert [a for _, a, _ in on_retry.calls] == [1]
    assert [r for r in caplog.records if r.name == "memories_async"] == []
