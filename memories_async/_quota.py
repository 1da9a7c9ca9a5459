"""The adaptive quota rules: what the answers say about an account's quota.

Pure logic on a :class:`QuotaEstimate` and a time, with no I/O and no clock of
its own, so that one process or many (through a shared store) run the same
rules, and tests run them on virtual time. See :mod:`memories_async._governor`
for how they are used.
"""

from __future__ import annotations

import enum
import logging
import math

import attrs

logger = logging.getLogger("memories_async")

START_RATE = 5.0
"""Requests per second a governor without a configured rate starts at (the highest
documented transcript quota): slow start doubles it while nothing is refused."""

MIN_RATE = 0.05
"""The rate in force never drops below this many requests per second."""

MAX_RATE = 100_000.0
"""Slow start stops doubling here: above it, pacing costs nothing worth saving."""

MARGIN = 0.003
"""Slots are spaced this fraction wider than ``1 / rate``: a strict quota refuses a
request that arrives a millisecond early, and clocks and networks jitter."""

JITTER = 0.001
"""And this many seconds more, or :data:`JITTER_SHARE` of a slot when that is less: a
millisecond added to every slot would cap the rate near a thousand a second."""

JITTER_SHARE = 0.01

PROBE_HOLD = 2.0
"""Seconds at a demonstrated rate before the first probe above it."""

MAX_PROBE_HOLD = 30.0
"""The hold before a probe doubles after each failed probe, up to this."""

PROBE_SUCCESSES = 3
"""Successes sent at a probed rate that make it demonstrated (one in slow start), until
refusals are known to come whatever the rate."""

NOISY_TRIAL = 10
"""Answers a trial needs once some refusals are known to come whatever the rate, in
slow start too."""

DOCUMENTED_QUOTAS = (5.0, 1.0)
"""The transcript quotas the API has documented: after a refusal with no rate
demonstrated yet, the next one below the refused rate is tried first."""

BRACKET = 1.03
"""A bracket narrower than this ratio is not probed: the estimate is good enough."""

PAIR_TOLERANCE = 1.05
"""Two accepted requests this ratio further apart than a slot still show that the
rate passes (send times jitter)."""

PAIR_TTL = 5.0
"""Seconds a pair of accepted requests stands as evidence: a server's burst, or an
earlier quota, must not keep the rate up for long."""

SNAP = 1.3
"""A downward trial to a measured rate goes to a documented quota instead when the
gaps measured explain it, and it is at most this ratio above the measured rate."""

NOISE_CAP = 0.5
"""The largest share of refusals tolerated as not caused by our rate."""

BAD_TTL = 10.0
"""Seconds after which a refused rate may be probed again: quotas grow, and others
sharing one leave."""

INTERVAL = 1.0
"""Seconds of answers the shared-quota logic judges at a time (and at least
:data:`INTERVAL_REQUESTS` requests), so it changes the rate at most once per interval."""

INTERVAL_REQUESTS = 8

KEPT = 0.85
"""A downward trial is kept only if at least this share of the accepted rate before
it is still accepted: cutting the rate must not cut what gets through."""


def slot_interval(rate: float, /) -> float:
    """Seconds between slots at ``rate``: ``1 / rate``, a margin wider, and the jitter."""
    return (1.0 + MARGIN) / rate + min(JITTER, JITTER_SHARE / rate)


class Trial(enum.Enum):
    """An experiment the adaptive rules are running."""

    UP = "up"
    """Pacing above the demonstrated rate, to see whether it passes."""
    DOWN = "down"
    """Pacing below it, to see whether refusals fall with the rate."""


@attrs.define(slots=True)
class QuotaEstimate:
    """What the governor knows of the quota; shared through the store.

    Times are on the store's clock. ``rate`` is the rate in force (``None``:
    unlimited), ``good`` the highest rate demonstrated to pass (0: none yet),
    ``bad`` the lowest rate refused because of our own pacing (``inf``: none),
    ``noise`` the share of refusals that does not fall with the rate. The
    rest is bookkeeping of the experiment under way.
    """

    rate: float | None
    good: float = 0.0
    bad: float = math.inf
    bad_at: float = -math.inf
    noise: float = 0.0
    slow_start: bool = True
    trial: Trial | None = None
    cut_from: float = 0.0
    """The rate before a downward trial, and the share of refusals that caused it."""
    cut_share: float = 0.0
    cut_accepted: float = 0.0
    """And the accepted rate then: a cut that costs accepted requests was no cure."""
    sent: int = 0
    """Answers (and refusals among them) to requests sent at the rate in force."""
    refused: int = 0
    since: float = -math.inf
    """When the first of those was counted, and the first and last accepted."""
    ok_first: float = -math.inf
    ok_last: float = -math.inf
    ok_sent: float = -math.inf
    """When the latest accepted request was sent, the highest rate at which two
    accepted requests followed each other, and when that was last seen."""
    pair_rate: float = 0.0
    pair_at: float = -math.inf
    refused_sent: float = -math.inf
    """When the latest refused request was sent, and whether the latest accepted
    one came a slot after a refusal."""
    ok_drained: bool = False
    changed_at: float = -math.inf
    """Requests sent before this were spaced at an older rate."""
    hold: float = PROBE_HOLD
    probe_at: float = -math.inf
    second: float = -math.inf
    """Start of the current second of accepted answers, their count, and the
    accepted rate of the last full second (what the server demonstrably accepts)."""
    second_ok: int = 0
    accepted_rate: float = 0.0
    tat: float = -math.inf
    """The theoretical arrival time of the next request (GCRA): the next free slot."""
    pause_until: float = -math.inf
    """A server's ``Retry-After`` pauses every request until then."""

    TIMES = (
        "bad_at",
        "since",
        "ok_first",
        "ok_last",
        "ok_sent",
        "pair_at",
        "refused_sent",
        "changed_at",
        "probe_at",
        "second",
        "tat",
        "pause_until",
    )
    """The fields that are times, for moving the estimate between clocks."""

    @classmethod
    def initial(cls, ceiling: float | None, *, adaptive: bool) -> QuotaEstimate:
        """Where a governor starts: slow start, or the configured rate assumed to pass."""
        if ceiling is None and adaptive:
            return cls(rate=START_RATE, trial=Trial.UP)
        return cls(rate=ceiling, good=ceiling or 0.0, slow_start=False)

    def interval(self) -> float | None:
        """Seconds between slots at the rate in force (``None``: unlimited)."""
        rate = self.rate
        return None if rate is None else slot_interval(rate)

    def to_wire(self, offset: float) -> dict[str, object]:
        """The estimate as plain JSON values, times moved by ``offset`` seconds."""
        data: dict[str, object] = {}
        for field in attrs.fields(QuotaEstimate):
            value = getattr(self, field.name)
            if field.name in self.TIMES:
                value = value + offset
            if isinstance(value, Trial):
                value = value.value
            elif isinstance(value, float) and not math.isfinite(value):
                value = "inf" if value > 0 else "-inf"
            data[field.name] = value
        return data

    @classmethod
    def from_wire(cls, data: dict[str, object], offset: float) -> QuotaEstimate:
        """The inverse of :meth:`to_wire`; raises ``ValueError`` on a damaged record."""
        values: dict[str, object] = {}
        for field in attrs.fields(QuotaEstimate):
            if field.name not in data:
                raise ValueError(f"damaged quota record: no {field.name!r}")
            values[field.name] = _wire_value(field.name, data[field.name], field.type, offset)
        return cls(**values)  # type: ignore[arg-type]


def _wire_value(name: str, value: object, kind: object, offset: float) -> object:
    """One field of a record read back, checked against the type of the field."""
    if name == "trial":
        if value is None:
            return None
        try:
            return Trial(value)
        except ValueError:
            raise ValueError(f"damaged quota record: trial {value!r}") from None
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"damaged quota record: {name} {value!r} is not true or false")
        return value
    if value is None and kind == "float | None":
        return None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"damaged quota record: {name} {value!r} is not a count")
        return value
    if value in ("inf", "-inf"):
        number = float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"damaged quota record: {name} {value!r} is not a number")
    else:
        number = float(value)
    return number - offset if name in QuotaEstimate.TIMES else number


class QuotaRules:
    """The adaptive rules for one client's configured ``ceiling`` (``None``: none).

    :meth:`judge` takes one answer and updates the estimate in place; it
    returns why the rate in force changed, or ``None``.
    """

    def __init__(self, ceiling: float | None) -> None:
        self.ceiling = ceiling

    def judge(
        self,
        state: QuotaEstimate,
        now: float,
        sent_at: float | None,
        *,
        refused: bool,
        binding: bool,
    ) -> str | None:
        """Judge one answer to a request sent at ``sent_at``.

        ``binding`` says whether callers were waiting for slots, i.e. whether
        a higher rate would have been used.
        """
        self._why: str | None = None
        if not refused:
            if now - state.second >= 1.0:
                elapsed = now - state.second
                state.accepted_rate = state.second_ok / elapsed if elapsed < 2.0 else 0.0
                state.second, state.second_ok = now, 0
            state.second_ok += 1
            if sent_at is not None:
                self._pair(state, sent_at, now)
        elif sent_at is not None:
            state.refused_sent = max(state.refused_sent, sent_at)
        # Only requests spaced at the rate in force say anything about it: those
        # sent after the slot that was reserved when the rate last changed.
        if sent_at is not None and sent_at < state.changed_at:
            return None
        if state.sent == 0:
            state.since = now
        state.sent += 1
        state.refused += refused
        if not refused:
            if state.sent - state.refused == 1:
                state.ok_first = now
            state.ok_last = now
        if state.trial is Trial.UP:
            self._judge_up(state, now, binding)
        elif state.trial is Trial.DOWN:
            self._judge_down(state, now)
        else:
            self._judge_steady(state, now, binding)
        return self._why

    def _judge_up(self, state: QuotaEstimate, now: float, binding: bool) -> None:
        rate = state.rate
        assert rate is not None
        # With noise, fewer answers would fail one trial in five by chance at 20 %.
        clean = 1 if state.slow_start else PROBE_SUCCESSES
        needed = NOISY_TRIAL if state.noise else clean
        ok = state.sent - state.refused
        decided = state.sent >= needed and ok >= min(needed, 3)
        # With noise, a clean start passes early: more would be asked of chance.
        decided = decided or (state.refused == 0 and ok >= PROBE_SUCCESSES)
        if state.refused and self._probe_failed(state, rate, decided=decided):
            state.bad, state.bad_at = min(state.bad, rate), now
            if state.slow_start:
                # A server's burst may have let a fast start through: what it
                # accepted over the last second bounds the rate to fall back to,
                # but not below a pair of requests accepted close together, or
                # the highest documented quota that passed (what is accepted
                # may be only our share of it).
                accepted = _accepted_lately(state, now)
                if accepted > 0:
                    documented = [q for q in DOCUMENTED_QUOTAS if q <= state.good]
                    floor = max(accepted, state.pair_rate, *documented[:1])
                    state.good = min(state.good, floor)
            if not state.slow_start:
                state.hold = min(MAX_PROBE_HOLD, 2 * state.hold)
            state.slow_start = False
            self._settle(state, now, f"refused at {_shown(rate)}")
            return
        if not decided:
            return
        state.good = rate
        if not state.slow_start and self.ceiling is None and not math.isfinite(state.bad):
            # Doubled with nothing refused above: as good as slow start, and so it goes on.
            state.slow_start = True
        if not state.slow_start:
            self._settle(state, now, f"{_shown(rate)} passes")
        elif binding and rate < MAX_RATE:
            self._try(state, now, Trial.UP, min(2 * rate, MAX_RATE), "slow start")
        # Otherwise the rate is not what limits the callers: slow start stays open,
        # growing again when they wait, and ends only with a refusal.

    @staticmethod
    def _probe_failed(state: QuotaEstimate, rate: float, *, decided: bool) -> bool:
        """Whether the refusals of an upward trial fail it (there are some)."""
        expected = state.sent * state.noise
        if state.refused >= 1 + expected + 2 * math.sqrt(expected):
            return True
        # The probe must deliver at least half the gain in accepted requests it
        # aims at (its refusals allow for the tolerated share, and chance).
        gain = rate / state.good if state.good > 0 else 2.0
        allowed = 1 - (1 - state.noise) * (1 + gain) / (2 * gain)
        spread = math.sqrt(state.noise * (1 - state.noise) / state.sent)
        return decided and state.refused > max(allowed, state.noise + spread) * state.sent

    def _judge_down(self, state: QuotaEstimate, now: float) -> None:
        if not self._interval_done(state, now):
            return
        share = state.refused / state.sent
        kept = self._accepted(state, now) >= KEPT * state.cut_accepted
        if kept and share >= NOISE_CAP and state.sent < 2 * INTERVAL_REQUESTS:
            return  # holding the rate for good deserves twice the answers
        if share <= state.cut_share / 2 and kept:
            # Refusals fell with the rate: someone else takes part of the quota.
            state.bad, state.bad_at = min(state.bad, state.cut_from), now
            state.good = state.rate or state.good
            state.hold = PROBE_HOLD
            self._settle(state, now, f"refusals fell to {share:.0%}: the quota is shared")
        else:
            share = (share + state.cut_share) / 2
            self._tolerate(state, now, share, f"refusals ({share:.0%}) do not fall with the rate")

    def _tolerate(self, state: QuotaEstimate, now: float, share: float, why: str) -> None:
        """Refusals not ours to fix: tolerate that share at the rate before any cut,
        and grow again as if unlimited, unless most requests are refused (then
        just hold the rate)."""
        rate = state.cut_from if state.trial is Trial.DOWN else state.rate
        assert rate is not None
        state.noise = min(NOISE_CAP, max(state.noise, share))
        state.good = rate
        if share < NOISE_CAP:
            # What was refused may have been the noise: grow again, at once.
            state.bad = math.inf
            state.slow_start = self.ceiling is None
            state.hold = PROBE_HOLD
            self._settle(state, now, why)
            state.probe_at = now
        else:
            # Hold: a bracket this narrow is not probed until BAD_TTL passes.
            state.bad, state.bad_at = rate, now
            self._settle(state, now, why)

    def _judge_steady(self, state: QuotaEstimate, now: float, binding: bool) -> None:
        rate = state.rate
        if rate is not None and self._interval_done(state, now):
            share = state.refused / state.sent
            accepted = self._accepted(state, now)
            state.sent = state.refused = 0
            if share > 1.5 * state.noise + 0.05:
                if state.pair_rate * PAIR_TOLERANCE >= rate:
                    # Requests spaced at this rate pass: refusals are not ours to fix.
                    why = f"{share:.0%} refused, but {_shown(rate)} passes"
                    self._tolerate(state, now, share, why)
                    return
                # Down to what the server demonstrably accepted (by half when
                # it accepted nothing).
                lower = accepted if accepted > 0 else rate / 2
                lower = max(MIN_RATE, min(lower, (1 - share / 2) * rate))
                # Accepted requests wait a slot or two (one shifted) for the quota
                # to refill: a documented quota that explains the gaps is likelier.
                top = 1 / max(1 / lower - 2 / rate, 1 / (SNAP * lower))
                lower = max(
                    [lower] + [q for q in DOCUMENTED_QUOTAS if lower < q <= top and q < rate]
                )
                state.cut_from, state.cut_share, state.cut_accepted = rate, share, accepted
                self._try(state, now, Trial.DOWN, lower, f"{share:.0%} refused at {_shown(rate)}")
                return
        if not binding or now < state.probe_at or rate is None:
            return
        ceiling = self.ceiling
        good, bad = state.good, state.bad
        if ceiling is not None and good >= ceiling:
            return
        if now - state.bad_at > BAD_TTL:
            # A quota can grow, and others sharing it can leave.
            bad = state.bad = math.inf
        if bad / good < BRACKET:
            state.probe_at = now + state.hold
            return
        target = (good + bad) / 2 if math.isfinite(bad) else 2 * good
        self._try(state, now, Trial.UP, target, "probing")

    @staticmethod
    def _pair(state: QuotaEstimate, sent_at: float, now: float) -> None:
        """Note an accepted request sent at ``sent_at``.

        Two of our requests accepted ``d`` seconds apart, none of ours accepted
        between them, the first just after a refusal (so no tokens were saved),
        show that a quota without burst refills at least ``1 / d`` per second,
        whatever others take of it: a lower bound on the quota that our share
        of it does not hide. (With a burst, the bound can be up to twice the
        quota, no more: a refusal just before leaves less than one token.)
        """
        if sent_at <= state.ok_sent:
            return
        gap = sent_at - state.ok_sent
        drained = state.ok_drained
        # The slot before this one was refused: the next pair may count.
        interval = state.interval()
        state.ok_drained = interval is not None and (
            0 < sent_at - state.refused_sent <= PAIR_TOLERANCE * 1.5 * interval
        )
        state.ok_sent = sent_at
        if now - state.pair_at > PAIR_TTL:
            state.pair_rate = 0.0  # quotas shrink too
        if drained and gap > 0 and PAIR_TOLERANCE / gap >= state.pair_rate:
            state.pair_rate = max(state.pair_rate, 1 / gap)
            state.pair_at = now

    @staticmethod
    def _accepted(state: QuotaEstimate, now: float) -> float:
        """Accepted answers per second among those counted since ``since``.

        From the first accepted to the last when there are two or more: a strict
        quota spaces accepted requests at least ``1 / quota`` apart, so this
        does not overestimate it, as refusals in between would make a mean do.
        """
        ok = state.sent - state.refused
        if ok >= 2 and state.ok_last > state.ok_first:
            return (ok - 1) / (state.ok_last - state.ok_first)
        # n answers since ``since`` span n - 1 gaps: the interval they stand
        # for is one mean gap longer.
        elapsed = max(now - state.since, 1e-9) * state.sent / max(state.sent - 1, 1)
        return (state.sent - state.refused) / elapsed

    def _interval_done(self, state: QuotaEstimate, now: float) -> bool:
        return state.sent >= INTERVAL_REQUESTS and now - state.since >= INTERVAL

    def _settle(self, state: QuotaEstimate, now: float, why: str) -> None:
        """End any trial: pace at the highest demonstrated rate.

        With none demonstrated yet, the highest documented quota below the
        refused rate is assumed to pass; refusals there are judged over
        intervals like any others, not one by one.
        """
        if state.good <= 0:
            below = [q for q in DOCUMENTED_QUOTAS if q <= state.bad]
            state.good = max(MIN_RATE, below[0] if below else state.bad / 2)
        state.trial = None
        state.probe_at = now + state.hold
        self._change(state, now, state.good, why)

    def _try(self, state: QuotaEstimate, now: float, trial: Trial, rate: float, why: str) -> None:
        state.trial = trial
        self._change(state, now, rate, why)

    def _change(self, state: QuotaEstimate, now: float, rate: float | None, why: str) -> None:
        old = state.rate
        if rate is not None and self.ceiling is not None:
            rate = min(rate, self.ceiling)
        state.sent = state.refused = 0
        if rate != old:
            state.rate = rate
        # The next slot (``tat``) may be reserved at the old spacing already:
        # answers count from the request after it.
        state.changed_at = max(now, state.tat) + (state.interval() or 0.0) / 2
        if rate == old:
            return
        self._why = f"rate {_shown(old)} -> {_shown(rate)}: {why}"


def _accepted_lately(state: QuotaEstimate, now: float) -> float:
    """Accepted answers per second over the last full second, or this one if longer."""
    elapsed = now - state.second
    current = state.second_ok / elapsed if elapsed >= 0.25 else 0.0
    return max(state.accepted_rate, current)


def _shown(rate: float | None) -> str:
    return "unlimited" if rate is None else f"{rate:.3g}/s"
