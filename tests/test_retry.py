"""call_with_retries: which errors are retried, how often, how long it waits, what it reports."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence

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
from memories_async._retry import call_with_retries

NO_WAIT = RetryPolicy(backoff=False)


class FakeClock:
    def __init__(self, start: float = 500.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Script:
    """An attempt function that fails with ``errors`` in turn, then returns ``result``."""

    def __init__(
        self,
        errors: Sequence[BaseException],
        result: str = "done",
        *,
        clock: FakeClock | None = None,
        cost: float = 0.0,
    ) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls: list[int] = []
        self.clock = clock
        self.cost = cost

    async def __call__(self, attempt: int) -> str:
        self.calls.append(attempt)
        if self.clock is not None:
            self.clock.now += self.cost
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


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace asyncio.sleep by a no-op that records the seconds asked for."""
    asked: list[float] = []

    async def no_sleep(seconds: float, result: object = None) -> object:
        asked.append(seconds)
        return result

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    return asked


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
    assert await call_with_retries(script, NO_WAIT, on_retry=on_retry) == ("done", 1)
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
    assert await call_with_retries(script, NO_WAIT) == ("done", 2)
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
        await call_with_retries(script, NO_WAIT, on_retry=on_retry)
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
        await call_with_retries(script, RetryPolicy(attempts=attempts, backoff=False))
    assert info.value is errors[attempts - 1]
    assert info.value.attempts == attempts
    assert script.calls == list(range(1, attempts + 1))


@pytest.mark.asyncio
async def test_non_retryable_after_retries_reports_attempts() -> None:
    final = InvalidParameterError("bad", code="0003", msg="bad")
    script = Script([transport(), transport(), final])
    with pytest.raises(InvalidParameterError) as info:
        await call_with_retries(script, NO_WAIT)
    assert info.value is final
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_account_error_stops_retrying() -> None:
    script = Script([transport(), api_error("0401", "bad key")])
    with pytest.raises(AuthenticationError) as info:
        await call_with_retries(script, NO_WAIT)
    assert info.value.attempts == 2


@pytest.mark.asyncio
async def test_foreign_exception_propagates_untouched() -> None:
    script = Script([KeyError("boom")])
    with pytest.raises(KeyError):
        await call_with_retries(script, NO_WAIT)
    assert script.calls == [1]


@pytest.mark.asyncio
async def test_foreign_exception_during_retries_propagates() -> None:
    script = Script([transport(), RuntimeError("boom")])
    with pytest.raises(RuntimeError, match="boom"):
        await call_with_retries(script, NO_WAIT)
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
        await call_with_retries(script, policy)
    assert info.value.attempts == expected
    assert len(script.calls) == expected


@pytest.mark.asyncio
async def test_transient_errors_share_the_attempts_budget() -> None:
    script = Script([transport(), transport(), transient(), transient()])
    policy = RetryPolicy(attempts=3, transient_attempts=3, backoff=False)
    with pytest.raises(TransientAPIError) as info:
        await call_with_retries(script, policy)
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_transient_then_success() -> None:
    script = Script([transient(), transient()])
    policy = RetryPolicy(transient_attempts=3, backoff=False)
    assert await call_with_retries(script, policy) == ("done", 3)


@pytest.mark.asyncio
async def test_rate_limits_do_not_use_up_attempts() -> None:
    script = Script([rate_limited() for _ in range(6)])
    policy = RetryPolicy(attempts=2, backoff=False)
    assert await call_with_retries(script, policy) == ("done", 7)


@pytest.mark.asyncio
async def test_http_429_does_not_use_up_attempts() -> None:
    script = Script([HTTPStatusError("HTTP 429", status=429) for _ in range(4)])
    policy = RetryPolicy(attempts=2, backoff=False)
    assert await call_with_retries(script, policy) == ("done", 5)


@pytest.mark.asyncio
async def test_rate_limits_between_failures() -> None:
    script = Script([transport(), rate_limited(), rate_limited(), transport()])
    policy = RetryPolicy(attempts=2, backoff=False)
    with pytest.raises(TransportError) as info:
        await call_with_retries(script, policy)
    assert info.value.attempts == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_rate_limits_never_use_up_attempts(attempts: int) -> None:
    # A refusal by the quota is not a failure: 99 of them, then the answer.
    script = Script([rate_limited() for _ in range(99)])
    policy = RetryPolicy(attempts=attempts, backoff=False, total_timeout=None)
    assert await call_with_retries(script, policy) == ("done", 100)


@pytest.mark.asyncio
async def test_total_timeout_stops_retrying() -> None:
    clock = FakeClock()
    script = Script([transport() for _ in range(10)], clock=clock, cost=10.0)
    policy = RetryPolicy(attempts=10, total_timeout=25.0, backoff=False)
    with pytest.raises(TransportError) as info:
        await call_with_retries(script, policy, clock=clock)
    # Attempts end at 10 s, 20 s and 30 s; nothing starts after 25 s.
    assert info.value.attempts == 3
    assert len(script.calls) == 3


@pytest.mark.asyncio
async def test_total_timeout_passed_on_first_attempt() -> None:
    clock = FakeClock()
    script = Script([transport()], clock=clock, cost=100.0)
    policy = RetryPolicy(total_timeout=30.0, backoff=False)
    with pytest.raises(TransportError) as info:
        await call_with_retries(script, policy, clock=clock)
    assert info.value.attempts == 1


@pytest.mark.asyncio
async def test_total_timeout_stops_rate_limit_retries() -> None:
    clock = FakeClock()
    script = Script([rate_limited() for _ in range(50)], clock=clock, cost=4.0)
    policy = RetryPolicy(attempts=10, total_timeout=10.0, backoff=False)
    with pytest.raises(RateLimitError) as info:
        await call_with_retries(script, policy, clock=clock)
    assert info.value.attempts == 3


@pytest.mark.asyncio
async def test_no_total_timeout() -> None:
    clock = FakeClock()
    script = Script([transport() for _ in range(4)], clock=clock, cost=1000.0)
    policy = RetryPolicy(attempts=5, total_timeout=None, backoff=False)
    assert await call_with_retries(script, policy, clock=clock) == ("done", 5)


# --- waits ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_backoff_waits_only_for_retry_after(sleeps: list[float]) -> None:
    # backoff=False drops the back-off, not what the server asks for (Config docs).
    script = Script([transport(), HTTPStatusError("HTTP 503", status=503, retry_after=9.0)])
    on_retry = Recorder()
    assert await call_with_retries(script, NO_WAIT, on_retry=on_retry) == ("done", 3)
    assert on_retry.waits == [0.0, 9.0]
    assert sleeps == [9.0]


@pytest.mark.asyncio
async def test_first_wait_is_jittered_initial_wait(sleeps: list[float]) -> None:
    policy = RetryPolicy(initial_wait=2.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    result = await call_with_retries(
        Script([transport()]), policy, on_retry=on_retry, rand=lambda: 0.25, clock=FakeClock()
    )
    assert result == ("done", 2)
    assert on_retry.waits == [0.5]
    assert sleeps == [0.5]


@pytest.mark.asyncio
async def test_waits_stay_within_max_wait(sleeps: list[float]) -> None:
    policy = RetryPolicy(attempts=8, initial_wait=1.0, max_wait=3.0, total_timeout=None)
    on_retry = Recorder()
    await call_with_retries(
        Script([transport() for _ in range(7)]),
        policy,
        on_retry=on_retry,
        rand=lambda: 0.999,
        clock=FakeClock(),
    )
    assert len(on_retry.waits) == 7
    assert all(0.0 <= w < 3.0 for w in on_retry.waits)
    assert on_retry.waits[-1] == pytest.approx(3.0 * 0.999)
    assert [s for s in sleeps if s > 0] == on_retry.waits


@pytest.mark.asyncio
async def test_waits_grow(sleeps: list[float]) -> None:
    policy = RetryPolicy(attempts=5, initial_wait=1.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    await call_with_retries(
        Script([transport() for _ in range(4)]),
        policy,
        on_retry=on_retry,
        rand=lambda: 0.5,
        clock=FakeClock(),
    )
    waits = on_retry.waits
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    assert waits[-1] > waits[0]


@pytest.mark.asyncio
async def test_waits_follow_the_documented_exponential_ceiling(sleeps: list[float]) -> None:
    policy = RetryPolicy(attempts=5, initial_wait=1.0, max_wait=100.0, total_timeout=None)
    on_retry = Recorder()
    await call_with_retries(
        Script([transport() for _ in range(4)]),
        policy,
        on_retry=on_retry,
        rand=lambda: 0.5,
        clock=FakeClock(),
    )
    # Before try n + 1: random * min(max_wait, initial_wait * 2 ** (n - 1)).
    assert (
        on_retry.waits
        == [policy.wait_before(n, random=0.5) for n in range(1, 5)]
        == [0.5, 1.0, 2.0, 4.0]
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [503, 500])
async def test_retry_after_is_the_wait(sleeps: list[float], status: int) -> None:
    error = HTTPStatusError(f"HTTP {status}", status=status, retry_after=7.0)
    on_retry = Recorder()
    result = await call_with_retries(
        Script([error]),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        rand=lambda: 0.0,
        clock=FakeClock(),
    )
    assert result == ("done", 2)
    assert on_retry.waits == [7.0]
    assert sleeps == [7.0]


@pytest.mark.asyncio
async def test_retry_after_on_later_attempt(sleeps: list[float]) -> None:
    errors = [transport(), HTTPStatusError("HTTP 503", status=503, retry_after=11.0)]
    on_retry = Recorder()
    await call_with_retries(
        Script(errors),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        rand=lambda: 0.0,
        clock=FakeClock(),
    )
    assert on_retry.waits == [0.0, 11.0]
    assert 11.0 in sleeps


@pytest.mark.asyncio
async def test_wait_capped_by_total_timeout(sleeps: list[float]) -> None:
    clock = FakeClock()
    error = HTTPStatusError("HTTP 503", status=503, retry_after=60.0)
    on_retry = Recorder()
    await call_with_retries(
        Script([error], clock=clock, cost=4.0),
        RetryPolicy(total_timeout=10.0),
        on_retry=on_retry,
        clock=clock,
    )
    assert on_retry.waits == [pytest.approx(6.0)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        api_error("0429", "Request has exceeded the limit."),
        HTTPStatusError("HTTP 429", status=429, retry_after=30.0),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_rate_limits_wait_in_the_governor_not_here(
    sleeps: list[float], error: MemoriesError
) -> None:
    on_retry = Recorder()
    await call_with_retries(
        Script([error]),
        RetryPolicy(total_timeout=None),
        on_retry=on_retry,
        rand=lambda: 0.9,
        clock=FakeClock(),
    )
    assert on_retry.waits == [0.0]
    assert all(s == 0 for s in sleeps)


# --- reporting -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_on_retry_called_once_per_retry() -> None:
    errors = [transport(), HTTPStatusError("HTTP 502", status=502), transient()]
    on_retry = Recorder()
    assert await call_with_retries(Script(errors), NO_WAIT, on_retry=on_retry) == ("done", 4)
    assert [(e, a) for e, a, _ in on_retry.calls] == [
        (errors[0], 1),
        (errors[1], 2),
        (errors[2], 3),
    ]


@pytest.mark.asyncio
async def test_on_retry_not_called_when_giving_up() -> None:
    on_retry = Recorder()
    with pytest.raises(TransportError):
        await call_with_retries(
            Script([transport() for _ in range(5)]),
            RetryPolicy(attempts=3, backoff=False),
            on_retry=on_retry,
        )
    assert [a for _, a, _ in on_retry.calls] == [1, 2]


@pytest.mark.asyncio
async def test_attempt_receives_its_number() -> None:
    script = Script([transport(), transport()])
    await call_with_retries(script, NO_WAIT)
    assert script.calls == [1, 2, 3]


@pytest.mark.asyncio
async def test_warning_logged_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memories_async")
    errors = [transport(), HTTPStatusError("HTTP 503", status=503)]
    await call_with_retries(Script(errors), NO_WAIT)
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
    await call_with_retries(Script([]), NO_WAIT)
    with pytest.raises(InvalidParameterError):
        await call_with_retries(Script([api_error("0003", "bad")]), NO_WAIT)
    assert [r for r in caplog.records if r.name == "memories_async"] == []
