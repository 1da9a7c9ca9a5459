"""Quota pacing: one governor per client, its state in a store shared by every process.

The memories.ai quota is per account (1 to 5 requests per second for
transcripts), shared by every key and process of the account, and refuses
with ``"0429"`` and no hint of when to come back. The governor keeps a client
under it with three mechanisms, in the order a request meets them:

1. **A server's pause.** A ``Retry-After`` (HTTP 429 or 503) pauses every
   caller sharing the state until it ends. Nothing else pauses everyone.
2. **Slots.** Requests are spaced ``1 / rate`` apart by GCRA (the generic
   cell rate algorithm): the state holds the theoretical arrival time of the
   next request, and callers take slots first come, first served, allowing
   ``burst`` at once after an idle time (default 1, what a strict quota
   allows). A refused request is not a failure: it takes the next free slot.
3. **The rate in force**, adapted from the answers by
   :class:`~memories_async._quota.QuotaRules`:

   * *Slow start.* Without a configured rate the governor starts at 5 per
     second and doubles the rate each time a request spaced at it passes
     while callers wait for slots, so finding that there is no limit takes
     a few round trips.
   * *A refusal caused by our own rate* (sent faster than any rate
     demonstrated to pass) brackets the quota: the rate falls back to the
     highest rate that passed (never a blind cut), and later probes halve
     the bracket, each failed one doubling the hold before the next.
   * *Refusals at a rate that passed before* mean someone else takes from
     the quota, or that the server refuses for reasons of its own. Once per
     interval the rate falls to what the server demonstrably accepted; if
     the share of refusals does not fall with it, the refusals are not ours
     to fix: the cut is undone and that share is tolerated from then on.

Where the state lives: in the governor (``memory://``, the default), or in a
:class:`~memories_async._ratestore.RedisRateStore` shared by every process
and machine that uses it, so that they pace as one client of the account. A
store lost mid-run is reported once; the governor goes on with its own copy
of the state and rejoins the store when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

import attrs

from ._errors import RateStoreError
from ._quota import QuotaEstimate, QuotaRules
from ._ratestore import RedisRateStore

logger = logging.getLogger("memories_async")

REJOIN_AFTER = 5.0
"""Seconds between attempts to reach a lost rate store again."""

SLACK = 0.001
"""A slot due within this many seconds is taken at once: the event loop cannot sleep
less than about a millisecond, so sleeping for it would cap the rate near a thousand
requests per second, whatever the rate in force."""

SLACK_BELOW = 0.01
"""The slack applies only to slots closer than this: above a hundred requests a second,
where no documented quota is; slower slots are kept to the microsecond."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@attrs.frozen(slots=True)
class GovernorStats:
    """A snapshot of a governor's counters and state."""

    rate: float | None
    """Requests per second in force now (``None``: no limit)."""
    accepted: int
    """Answers that the quota let through."""
    refused: int
    """Rate-limit answers (``"0429"`` or HTTP 429)."""
    accepted_rate: float
    """Accepted answers per second since the first request."""
    waited: float
    """Seconds callers spent waiting for slots or pauses, summed over callers."""
    pauses: int
    """Pauses started by a server's ``Retry-After``."""
    rate_changes: int
    """Changes of the rate in force made by this governor."""
    shared: bool = False
    """Whether the state is shared through a store that answers now."""

    @property
    def refused_share(self) -> float:
        """Refused answers as a share of all answers (0 when there were none)."""
        total = self.accepted + self.refused
        return self.refused / total if total else 0.0


class RateGovernor:
    """Paces the requests of a client against its account's quota; see the module docs.

    ``rate`` is the quota to pace at (``None``: find it), ``burst`` how many
    requests may go at once after an idle time, ``adaptive=False`` keeps the
    rate fixed (with ``rate=None``: no pacing at all). ``store`` and ``key``
    share the state with every governor using the same store and key.
    ``clock``, ``sleep`` and ``random`` are injectable so the logic is
    testable on virtual time.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        burst: int = 1,
        adaptive: bool = True,
        store: RedisRateStore | None = None,
        key: str = "",
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        if rate is not None and (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not (rate > 0 and math.isfinite(rate))
        ):
            raise ValueError(f"'rate' must be a number > 0 or None, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"'burst' must be a whole number >= 1, got {burst!r}")
        if store is not None and not key:
            raise ValueError("a shared 'store' needs the 'key' of the quota")
        self._ceiling = rate
        self._burst = burst
        self._adaptive = adaptive
        self._rules = QuotaRules(rate)
        self._store = store
        self._key = key
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._state = QuotaEstimate.initial(rate, adaptive=adaptive)
        self._version = ""
        self._offset = 0.0
        self._offline_until = -math.inf
        self._lost: str | None = None
        self._lock = asyncio.Lock()
        self._queue: deque[asyncio.Future[float]] = deque()
        self._pacer: asyncio.Task[None] | None = None
        self._waiting = 0
        self._first = math.inf
        self._accepted = 0
        self._refused = 0
        self._refused_in_row = 0
        self._waited = 0.0
        self._pauses = 0
        self._changes = 0

    def __repr__(self) -> str:
        ceiling = "" if self._ceiling is None else f" ceiling={self._ceiling:g}/s"
        store = "" if self._store is None else f" store={self._store.url}"
        return (
            f"<RateGovernor rate={_shown(self._state.rate)}{ceiling}"
            f" adaptive={self._adaptive}{store}>"
        )

    @property
    def rate(self) -> float | None:
        """Requests per second in force now (``None``: unlimited)."""
        return self._state.rate

    @property
    def ceiling(self) -> float | None:
        """The configured rate, which the governor never exceeds (``None``: none)."""
        return self._ceiling

    @property
    def clock(self) -> Clock:
        """The clock the governor reads (seconds, monotonic)."""
        return self._clock

    @property
    def sleep(self) -> Sleep:
        """How the governor waits (``asyncio.sleep`` unless injected)."""
        return self._sleep

    @property
    def random(self) -> Callable[[], float]:
        """The governor's source of jitter, in [0, 1)."""
        return self._random

    @property
    def shared(self) -> bool:
        """Whether the state lives in a shared store (answers then go through :meth:`answered`)."""
        return self._store is not None

    def stats(self) -> GovernorStats:
        """Counters since the governor was made."""
        elapsed = self._clock() - self._first
        accepted_rate = self._accepted / elapsed if elapsed > 0 and self._accepted > 1 else 0.0
        return GovernorStats(
            rate=self._state.rate,
            accepted=self._accepted,
            refused=self._refused,
            accepted_rate=accepted_rate,
            waited=self._waited,
            pauses=self._pauses,
            rate_changes=self._changes,
            shared=self._store is not None and self._lost is None,
        )

    async def check(self) -> None:
        """Make sure a shared store answers; raises :class:`RateStoreError` saying why not."""
        if self._store is not None:
            await self._store.check()

    async def aclose(self) -> None:
        """Close the connections to a shared store, if any."""
        if self._store is not None:
            await self._store.aclose()

    # -- slots ----------------------------------------------------------------------

    def try_acquire(self) -> float | None:
        """Take a slot if one is free now, without waiting; ``None`` if not.

        Returns the time sent, on the governor's clock. The common case costs
        no coroutine; when this returns ``None`` (or the state is shared),
        await :meth:`acquire`.
        """
        if self._store is None:
            if self._queue:  # waiters not served yet come first
                return None
        elif self._lost is None or self._waiting:
            return None
        now = self._clock()
        if self._take_here(now) > 0:
            return None
        return now

    async def acquire(self) -> float:
        """Wait for a slot, first come first served; return the time sent.

        Pass the returned time to :meth:`on_success` or
        :meth:`on_rate_limited` (or :meth:`answered`), so that the answer is
        judged against the rate in force when the request was sent.
        """
        started = self._clock()
        self._waiting += 1
        try:
            if self._store is None:
                now = await self._queued()
            else:
                async with self._lock:
                    now = self._clock()
                    while (wait := await self._take(now)) > 0:
                        await self._sleep(wait)
                        now = self._clock()
        finally:
            self._waiting -= 1
        if now > started:
            self._waited += now - started
        return now

    def _queued(self) -> asyncio.Future[float]:
        """A place in the queue of local waiters, resolved with the time its slot is taken.

        One pacer serves the queue: it gives every waiter whose slot is due its slot at
        once, in the same turn of the event loop, so that a queue formed once (in slow
        start, say) drains as fast as the rate allows. Handing slots over one waiter
        at a time would admit one request per turn of the loop, and a busy client
        would then stay queued behind its own pacing whatever the rate.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._queue.append(future)
        if self._pacer is None:
            self._pacer = loop.create_task(self._pace())
        return future

    async def _pace(self) -> None:
        """Serve the queue of local waiters in order, sleeping until each slot is free."""
        queue = self._queue
        try:
            while queue:
                if queue[0].done():  # a waiter cancelled while it waited
                    queue.popleft()
                    continue
                now = self._clock()
                wait = self._take_here(now)
                if wait > 0:
                    await self._sleep(wait)
                else:
                    queue.popleft().set_result(now)
        finally:
            self._pacer = None

    async def _take(self, now: float) -> float:
        """Take the slot if it is free now (return 0), else return the seconds until it may be.

        A slot is taken only once free, in the store as here: slots are then
        spaced from the moments they were really taken (on the store's clock,
        whatever the sleep of each process overshot), and a rate changed while
        waiting applies to the very next request.
        """
        store = self._store
        if store is not None and now >= self._offline_until:
            try:
                wait, _taken, state, version, offset = await store.reserve(
                    self._key, self._state, burst=self._burst, local_now=now
                )
            except RateStoreError as exc:
                self._lose_store(now, exc)
            else:
                self._rejoined()
                self._state, self._version, self._offset = state, version, offset
                self._note_first(now)
                return wait
        return self._take_here(now)

    def _take_here(self, now: float) -> float:
        """GCRA on the local state: take the slot if it is free now (return 0),
        else return the seconds until it may be."""
        state = self._state
        if state.pause_until > now:
            return state.pause_until - now
        interval = state.interval()
        if interval is None:
            self._note_first(now)
            return 0.0
        slot = max(now, state.tat - (self._burst - 1) * interval)
        # Not at the rates of a strict quota, whose slots must be kept exactly.
        slack = SLACK if interval < SLACK_BELOW else 0.0
        if slot > now + slack:
            return slot - now
        state.tat = max(state.tat, now) + interval
        self._note_first(now)
        return 0.0

    def _note_first(self, now: float) -> None:
        if self._first == math.inf:
            # The first request is spaced from nothing: it says nothing of the rate.
            self._first = now
            self._state.changed_at = max(self._state.changed_at, now + 1e-9)

    # -- answers --------------------------------------------------------------------

    def on_success(self, *, sent_at: float | None = None) -> None:
        """Record an answer that the quota let through (whatever its content)."""
        self._accepted += 1
        self._refused_in_row = 0
        if self._adaptive:
            self._judge(self._state, sent_at, refused=False)

    def on_rate_limited(
        self, *, sent_at: float | None = None, retry_after: float | None = None
    ) -> float:
        """Record a rate-limit answer; return the seconds every caller now pauses.

        Only a server's ``retry_after`` pauses callers; otherwise the refused
        request simply takes the next free slot again.
        """
        self._refused += 1
        self._refused_in_row += 1
        now = self._clock()
        state = self._state
        self._pause(state, now, retry_after)
        interval = state.interval()
        shift = self._store is None and self._ceiling is None
        if interval is not None and self._refused_in_row > 1 and shift:
            # Processes finding the quota alone can fall in step and refuse each
            # other at every slot: a random shift of the next slot breaks the step.
            # Not with a configured rate: there the refusals come from others that
            # the shift cannot avoid, and it only costs time (a neighbour taking 2
            # of 5 per second: 0.88 of what is left without it, 0.85 with it).
            state.tat = max(state.tat, now) + self._random() * interval / 2
        if self._adaptive:
            self._judge(state, sent_at, refused=True)
        return max(0.0, state.pause_until - now)

    async def answered(
        self, *, sent_at: float, refused: bool, retry_after: float | None = None
    ) -> None:
        """Record an answer in the shared store (what a client does when :attr:`shared`).

        The rules run on the freshest state of the store: when another
        process wrote it meanwhile, the answer is judged again on its state.
        """
        if refused:
            self.on_rate_limited(sent_at=sent_at, retry_after=retry_after)
        else:
            self.on_success(sent_at=sent_at)
        store = self._store
        if store is None or self._lost is not None:
            return
        now = self._clock()
        pause = self._state.pause_until if retry_after else None
        for _ in range(3):
            try:
                written, fresh, version = await store.update(
                    self._key, self._version, self._state, offset=self._offset, pause_until=pause
                )
            except RateStoreError as exc:
                self._lose_store(now, exc)
                return
            self._version = version
            if written or fresh is None:
                return
            fresh.tat, fresh.pause_until = self._state.tat, self._state.pause_until
            self._state = fresh
            if self._adaptive:
                self._judge(fresh, sent_at, refused=refused, count=False)

    def pause(self, seconds: float) -> None:
        """Pause every caller of this governor for ``seconds`` (a server's ``Retry-After``).

        With a shared store, await :meth:`pause_shared` instead, so that every
        process sharing the store pauses too.
        """
        self._pause(self._state, self._clock(), seconds)

    async def pause_shared(self, seconds: float) -> None:
        """:meth:`pause`, written to the shared store (the later pause wins there)."""
        self.pause(seconds)
        store = self._store
        if store is None or self._lost is not None:
            return
        try:
            await store.update(
                self._key,
                self._version,
                self._state,
                offset=self._offset,
                pause_until=self._state.pause_until,
            )
        except RateStoreError as exc:
            self._lose_store(self._clock(), exc)

    def _pause(self, state: QuotaEstimate, now: float, retry_after: float | None) -> None:
        if retry_after is None or not retry_after > 0:
            return
        until = now + retry_after
        if until > state.pause_until:
            if state.pause_until <= now:
                self._pauses += 1
            state.pause_until = until
            logger.info("the server asked for a pause of %.1fs: every request waits", retry_after)

    def _judge(
        self, state: QuotaEstimate, sent_at: float | None, *, refused: bool, count: bool = True
    ) -> None:
        why = self._rules.judge(
            state, self._clock(), sent_at, refused=refused, binding=self._waiting > 0
        )
        if why is not None:
            if count:
                self._changes += 1
            logger.debug("%s", why)

    # -- a shared store lost and found ------------------------------------------------

    def _lose_store(self, now: float, exc: RateStoreError) -> None:
        self._offline_until = now + REJOIN_AFTER
        if self._lost is None:
            self._lost = str(exc)
            logger.warning("%s; pacing in this process only until the store answers again", exc)

    def _rejoined(self) -> None:
        if self._lost is not None:
            self._lost = None
            logger.warning("rate store %s answers again: pacing with it", _url(self._store))


def _url(store: RedisRateStore | None) -> str:
    return "-" if store is None else store.url


def _shown(rate: float | None) -> str:
    return "unlimited" if rate is None else f"{rate:.3g}/s"
