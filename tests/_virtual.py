"""Virtual time for asyncio tests, and a model of a strict quota to run clients against.

:class:`VirtualEventLoop` is an ordinary selector event loop whose clock moves
only when nothing is ready to run: its selector, instead of blocking for the
timeout asyncio asks for, adds that timeout to the clock. Timers
(``asyncio.sleep``, ``call_later``, timeouts) therefore fire in order at exact
virtual times, and a run of minutes of virtual time takes milliseconds. Give a
:class:`~memories_async.RateGovernor` ``clock=loop.time`` and keep its default
sleep (the real ``asyncio.sleep``, which now sleeps on virtual time).

:class:`TokenBucket` is the strictest quota the API documents allow (burst 1,
a refused request takes no token), and :func:`run_jobs` a client sending
requests through a governor at a given concurrency, like the SDK does.
"""

from __future__ import annotations

import asyncio
import random
import selectors

from memories_async import RateGovernor

T0 = 1000.0
"""Where virtual clocks start: not 0, so that no code may mistake a time for a duration."""


class VirtualSelector(selectors.DefaultSelector):
    """A selector that never blocks: waiting ``timeout`` seconds moves its clock instead."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.now = start

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:  # pragma: no cover - a bug of the test, not of the code under test
            raise RuntimeError("virtual time: every task waits for something that never happens")
        self.now += timeout
        return []


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time, starting at ``start``; see the module docs."""

    def __init__(self, start: float = T0) -> None:
        self._virtual = VirtualSelector(start)
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


class TokenBucket:
    """A strict quota: ``qps`` tokens a second, at most ``burst`` of them saved up.

    A request that finds no whole token is refused and takes none. ``qps=None``
    is no limit. ``refuse_share`` refuses that share of the requests at random
    whatever the rate, as a server might for reasons of its own.
    """

    def __init__(
        self,
        qps: float | None,
        *,
        start: float = T0,
        burst: float = 1.0,
        refuse_share: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.qps = qps
        self.burst = burst
        self.tokens = burst
        self.filled_at = start
        self.refuse_share = refuse_share
        self.rng = rng or random.Random(1)
        self.accepted = 0
        self.refused = 0

    def take(self, now: float) -> bool:
        """Whether a request arriving at ``now`` passes."""
        if self.refuse_share and self.rng.random() < self.refuse_share:
            self.refused += 1
            return False
        if self.qps is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.filled_at) * self.qps)
            self.filled_at = now
            if self.tokens < 1 - 1e-9:
                self.refused += 1
                return False
            self.tokens -= 1
        self.accepted += 1
        return True


async def run_jobs(
    governor: RateGovernor,
    bucket: TokenBucket,
    *,
    jobs: int,
    concurrency: int = 16,
    latency: float = 0.08,
    jitter: float = 0.001,
    rng: random.Random | None = None,
) -> float:
    """Send ``jobs`` requests, ``concurrency`` at a time, until each passes; the seconds taken.

    Each request takes ``latency`` (plus up to ``jitter`` on the way out) and
    is judged by the bucket halfway; a refused one is sent again, as the
    client's retry does, through the governor.
    """
    loop = asyncio.get_running_loop()
    rng = rng or random.Random(7)
    started = loop.time()
    slots = asyncio.Semaphore(concurrency)

    async def job() -> None:
        async with slots:
            while True:
                sent = governor.try_acquire()
                if sent is None:
                    sent = await governor.acquire()
                await asyncio.sleep(latency / 2 + rng.uniform(0, jitter))
                passed = bucket.take(loop.time())
                await asyncio.sleep(latency / 2)
                if passed:
                    governor.on_success(sent_at=sent)
                    return
                governor.on_rate_limited(sent_at=sent)

    await asyncio.gather(*(job() for _ in range(jobs)))
    return loop.time() - started
