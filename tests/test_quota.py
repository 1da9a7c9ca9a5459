"""The adaptive quota rules (:mod:`memories_async._quota`), pure, on hand-made answers.

Covers :class:`QuotaEstimate` (where a governor starts, slot spacing, the wire
format shared through a store and its damaged records) and
:class:`QuotaRules`: slow start and its fallback to a demonstrated or a
documented quota, probes and their holds, what makes a probed rate good, the
ceiling, refusals at a demonstrated rate (a downward trial, then either a
shared quota or a tolerated noise), the time after which a refused rate is
forgotten, answers that say nothing (stale, or at no rate) and the count of
answers accepted per second, pairs of accepted requests as a lower bound of
the quota, and what a downward trial keeps. No asyncio and no clock: every
answer is given its time.
"""

from __future__ import annotations

import json
import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memories_async._quota import (
    BAD_TTL,
    BRACKET,
    DOCUMENTED_QUOTAS,
    INTERVAL,
    INTERVAL_REQUESTS,
    JITTER,
    KEPT,
    MARGIN,
    MAX_PROBE_HOLD,
    MAX_RATE,
    MIN_RATE,
    NOISE_CAP,
    NOISY_TRIAL,
    PAIR_TTL,
    PROBE_HOLD,
    PROBE_SUCCESSES,
    SNAP,
    START_RATE,
    QuotaEstimate,
    QuotaRules,
    Trial,
)

NOW = 1000.0


def steady(rate: float, **fields: object) -> QuotaEstimate:
    """An estimate pacing at a demonstrated ``rate``, no trial under way."""
    values: dict[str, object] = {"good": rate, "slow_start": False}
    values.update(fields)
    return QuotaEstimate(rate=rate, **values)  # type: ignore[arg-type]


def answer(
    rules: QuotaRules,
    state: QuotaEstimate,
    now: float,
    *,
    refused: bool = False,
    binding: bool = True,
    sent_at: float | None = None,
) -> str | None:
    return rules.judge(state, now, sent_at, refused=refused, binding=binding)


def answers(
    rules: QuotaRules,
    state: QuotaEstimate,
    pattern: str,
    *,
    start: float,
    step: float,
    binding: bool = True,
    latency: float | None = None,
) -> list[str]:
    """Judge one answer per character of ``pattern`` (``.`` passed, ``x`` refused), ``step`` apart.

    With ``latency``, each request was sent that long before its answer (else
    its send time is unknown). Returns the reasons of the rate changes they caused.
    """
    why = []
    for k, mark in enumerate(pattern):
        now = start + k * step
        sent_at = None if latency is None else now - latency
        said = answer(rules, state, now, refused=mark == "x", binding=binding, sent_at=sent_at)
        if said is not None:
            why.append(said)
    return why


# --- QuotaEstimate -------------------------------------------------------------------------------


def test_initial_without_rate_is_slow_start() -> None:
    state = QuotaEstimate.initial(None, adaptive=True)
    assert state.rate == START_RATE
    assert state.trial is Trial.UP
    assert state.slow_start
    assert state.good == 0.0
    assert state.bad == math.inf


@pytest.mark.parametrize("adaptive", [True, False])
def test_initial_with_rate_assumes_it_passes(adaptive: bool) -> None:
    state = QuotaEstimate.initial(2.5, adaptive=adaptive)
    assert (state.rate, state.good, state.slow_start, state.trial) == (2.5, 2.5, False, None)


def test_initial_fixed_without_rate_is_unlimited() -> None:
    state = QuotaEstimate.initial(None, adaptive=False)
    assert (state.rate, state.good, state.slow_start) == (None, 0.0, False)
    assert state.interval() is None


@pytest.mark.parametrize("rate", [0.05, 1.0, 5.0, 1234.5])
def test_interval_is_a_little_wider_than_one_over_rate(rate: float) -> None:
    jitter = min(JITTER, 0.01 / rate)  # a millisecond, or 1 % of a slot at high rates
    assert QuotaEstimate(rate=rate).interval() == pytest.approx((1 + MARGIN) / rate + jitter)


def _everything_set(trial: Trial | None, rate: float | None) -> QuotaEstimate:
    return QuotaEstimate(
        rate=rate,
        good=4.0,
        bad=math.inf,
        bad_at=-math.inf,
        noise=0.25,
        slow_start=False,
        trial=trial,
        cut_from=8.0,
        cut_share=0.375,
        sent=3,
        refused=1,
        since=12.5,
        changed_at=13.25,
        hold=8.0,
        probe_at=20.0,
        second=11.0,
        second_ok=2,
        accepted_rate=3.5,
        tat=14.5,
        pause_until=math.inf,
    )


@pytest.mark.parametrize("trial", [None, Trial.UP, Trial.DOWN])
@pytest.mark.parametrize("rate", [None, 6.5])
@pytest.mark.parametrize("offset", [0.0, 100.0, -987.5])
def test_wire_round_trip(trial: Trial | None, rate: float | None, offset: float) -> None:
    state = _everything_set(trial, rate)
    wire = state.to_wire(offset)
    # Plain JSON: no NaN or infinity literals, no enum.
    text = json.dumps(wire, allow_nan=False)
    assert QuotaEstimate.from_wire(json.loads(text), offset) == state


def test_wire_moves_times_only_and_spells_infinities() -> None:
    wire = _everything_set(Trial.DOWN, 6.5).to_wire(100.0)
    assert wire["trial"] == "down"
    assert wire["bad"] == "inf"
    assert wire["bad_at"] == "-inf"
    assert wire["pause_until"] == "inf"
    assert (wire["since"], wire["changed_at"], wire["probe_at"], wire["second"]) == (
        112.5,
        113.25,
        120.0,
        111.0,
    )
    assert wire["tat"] == 114.5
    # Not times: left alone.
    assert (wire["rate"], wire["good"], wire["hold"], wire["accepted_rate"]) == (6.5, 4.0, 8.0, 3.5)
    assert set(wire) == {field.name for field in attrs.fields(QuotaEstimate)}


def test_wire_round_trip_of_initial_states() -> None:
    for state in (
        QuotaEstimate.initial(None, adaptive=True),
        QuotaEstimate.initial(None, adaptive=False),
        QuotaEstimate.initial(1.0, adaptive=True),
    ):
        assert QuotaEstimate.from_wire(state.to_wire(-3.5), -3.5) == state


def _damaged(**changes: object) -> dict[str, object]:
    data = _everything_set(Trial.UP, 5.0).to_wire(0.0)
    for name, value in changes.items():
        if value is KeyError:
            del data[name]
        else:
            data[name] = value
    return data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param(_damaged(tat=KeyError), id="a field missing"),
        pytest.param(_damaged(trial="sideways"), id="unknown trial"),
        pytest.param(_damaged(since="soon"), id="time not a number"),
        pytest.param(_damaged(changed_at=None), id="time null"),
        pytest.param(_damaged(probe_at=[1.0]), id="time a list"),
    ],
)
def test_from_wire_refuses_damaged_records(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"^damaged quota record: "):
        QuotaEstimate.from_wire(data, 0.0)


# --- answers that say nothing --------------------------------------------------------------------


ACCEPTED = ("second", "second_ok", "accepted_rate", "ok_sent", "ok_drained", "refused_sent")
"""The fields counting accepted answers per second, and the send times that pairs of
accepted requests are measured by, whenever they were sent."""


def _judged(state: QuotaEstimate) -> dict[str, object]:
    return {k: v for k, v in attrs.asdict(state).items() if k not in ACCEPTED}


def test_an_answer_sent_before_the_rate_changed_says_nothing() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    state.changed_at = NOW
    before = _judged(state)
    for refused in (False, True):
        assert answer(rules, state, NOW + 1, refused=refused, sent_at=NOW - 0.001) is None
    assert _judged(state) == before
    # It was accepted all the same.
    assert (state.second, state.second_ok) == (NOW + 1, 1)


def test_accepted_answers_are_counted_per_second() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    assert answers(rules, state, "..x..", start=NOW, step=0.25, binding=False) == []
    assert (state.second, state.second_ok, state.accepted_rate) == (NOW + 1, 1, 3.0)
    answer(rules, state, NOW + 2.5, refused=True, binding=False)  # refusals are not counted
    answer(rules, state, NOW + 2.5, binding=False)
    assert (state.second, state.second_ok) == (NOW + 2.5, 1)
    assert state.accepted_rate == pytest.approx(1 / 1.5)
    # After two seconds or more without an accepted answer, no rate is known.
    answer(rules, state, NOW + 4.5, binding=False)
    assert (state.second, state.second_ok, state.accepted_rate) == (NOW + 4.5, 1, 0.0)


def test_an_answer_sent_when_the_rate_changed_counts() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    state.changed_at = NOW
    assert answer(rules, state, NOW + 0.1, sent_at=NOW) is not None
    assert state.rate == 2 * START_RATE


def test_without_a_rate_answers_are_only_counted() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=None, slow_start=False)
    for k in range(3 * INTERVAL_REQUESTS):
        assert answer(rules, state, NOW + k, refused=k % 2 == 0) is None
    assert state.rate is None
    assert state.trial is None
    assert state.sent == 3 * INTERVAL_REQUESTS


# --- slow start ----------------------------------------------------------------------------------


def test_slow_start_doubles_on_a_binding_success() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    state.tat = NOW + 0.5  # the next slot, reserved at the old spacing
    why = answer(rules, state, NOW)
    assert why == "rate 5/s -> 10/s: slow start"
    assert (state.rate, state.good, state.trial, state.slow_start) == (10.0, 5.0, Trial.UP, True)
    assert (state.sent, state.refused) == (0, 0)
    # Answers count from the request after the slot reserved at the old spacing.
    assert state.changed_at == pytest.approx(NOW + 0.5 + (1 + MARGIN) / 20 + JITTER / 2)


def test_slow_start_doubles_up_to_max_rate_and_stays_there() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    rates = [state.rate]
    now = NOW
    for _ in range(20):
        now += 0.01
        answer(rules, state, now)
        rates.append(state.rate)
    assert rates[:4] == [5.0, 10.0, 20.0, 40.0]
    assert rates[14:17] == [81920.0, MAX_RATE, MAX_RATE]
    assert rates[-1] == MAX_RATE
    # As good as unlimited: still in slow start, which only a refusal ends.
    assert (state.good, state.trial, state.slow_start) == (MAX_RATE, Trial.UP, True)
    assert answer(rules, state, now + 0.01, refused=True) is None
    assert (state.rate, state.bad, state.trial, state.slow_start) == (
        MAX_RATE,
        MAX_RATE,
        None,
        False,
    )


def test_slow_start_does_not_double_on_a_success_nobody_waited_for() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    assert answer(rules, state, NOW, binding=False) is None
    # The rate is not what limits the callers: slow start stays open, unchanged.
    assert (state.rate, state.good, state.trial) == (START_RATE, START_RATE, Trial.UP)
    assert state.slow_start
    # A binding success doubles, at once.
    assert answer(rules, state, NOW + 0.1) == "rate 5/s -> 10/s: slow start"
    # A refusal still ends it, back to the rate that passed: 2 accepted in the
    # last 0.5 s bound it, but not below the documented quota of 5/s.
    assert answer(rules, state, NOW + 0.5, refused=True) == "rate 10/s -> 5/s: refused at 10/s"
    assert not state.slow_start


def test_refused_in_slow_start_falls_back_to_the_demonstrated_rate() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    answer(rules, state, NOW)
    answer(rules, state, NOW + 0.1)
    assert (state.rate, state.good) == (20.0, 10.0)
    why = answer(rules, state, NOW + 0.2, refused=True)
    assert why == "rate 20/s -> 10/s: refused at 20/s"
    assert (state.rate, state.good, state.bad, state.bad_at) == (10.0, 10.0, 20.0, NOW + 0.2)
    assert not state.slow_start
    assert state.trial is None
    assert state.hold == PROBE_HOLD  # slow start's refusal is no failed probe
    assert state.probe_at == NOW + 0.2 + PROBE_HOLD


def test_refused_in_slow_start_falls_back_at_most_to_what_was_accepted() -> None:
    # A burst the server allowed let a fast start through: 40/s passed, but the
    # server accepted 3 in the last full second. What is accepted may be only
    # our share: the documented quota of 5/s that passed is the floor.
    rules = QuotaRules(None)
    state = QuotaEstimate.initial(None, adaptive=True)
    answers(rules, state, "...", start=NOW, step=0.1)
    assert answer(rules, state, NOW + 1.0) == "rate 40/s -> 80/s: slow start"
    assert (state.good, state.accepted_rate) == (40.0, 3.0)
    assert answer(rules, state, NOW + 1.1, refused=True) == "rate 80/s -> 5/s: refused at 80/s"
    assert (state.rate, state.good, state.bad) == (5.0, 5.0, 80.0)


def test_refused_in_slow_start_below_the_documented_quota_falls_to_what_was_accepted() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=4.0, good=2.0, trial=Trial.UP, second=NOW - 0.5, second_ok=1)
    assert answer(rules, state, NOW, refused=True) == "rate 4/s -> 2/s: refused at 4/s"
    assert (state.rate, state.good, state.bad) == (2.0, 2.0, 4.0)
    state = QuotaEstimate(rate=4.0, good=3.0, trial=Trial.UP, second=NOW - 0.8, second_ok=1)
    assert answer(rules, state, NOW, refused=True) == "rate 4/s -> 1.25/s: refused at 4/s"


@pytest.mark.parametrize(
    ("refused_at", "fallback"),
    [
        # Refused at a documented quota: it is assumed all the same, and its
        # refusals judged over an interval (they may be another's).
        (START_RATE, START_RATE),
        (40.0, 5.0),
        (5.5, 5.0),
        (3.0, 1.0),
        (1.0, 1.0),
        (0.9, 0.45),
        (0.08, MIN_RATE),
    ],
)
def test_refused_with_nothing_demonstrated_falls_to_a_documented_quota(
    refused_at: float, fallback: float
) -> None:
    assert DOCUMENTED_QUOTAS == (5.0, 1.0)
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=refused_at, trial=Trial.UP)
    answer(rules, state, NOW, refused=True)
    assert state.rate == fallback
    assert state.good == fallback
    assert state.bad == refused_at


def test_refusals_tolerated_as_noise_in_slow_start() -> None:
    # With a share of refusals known to come whatever the rate, slow start needs
    # NOISY_TRIAL answers, and a refusal among them is no reason to stop.
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=10.0, good=5.0, noise=0.2, trial=Trial.UP)
    assert answers(rules, state, ".x.....x.", start=NOW, step=0.1) == []
    assert NOISY_TRIAL == 10
    assert answers(rules, state, ".", start=NOW + 0.9, step=0.1) == [
        "rate 10/s -> 20/s: slow start"
    ]


def test_with_noise_a_clean_start_passes_a_trial_early() -> None:
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=10.0, good=5.0, noise=0.2, trial=Trial.UP)
    assert answers(rules, state, "." * PROBE_SUCCESSES, start=NOW, step=0.1) == [
        "rate 10/s -> 20/s: slow start"
    ]


# --- probes --------------------------------------------------------------------------------------


def test_probe_halves_the_bracket() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, bad=10.0, bad_at=NOW - 1, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 7.5/s: probing"
    assert state.trial is Trial.UP


def test_probe_without_a_refused_rate_doubles() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 10/s: probing"


@pytest.mark.parametrize(
    ("binding", "now"),
    [pytest.param(False, NOW, id="nobody waits"), pytest.param(True, NOW - 0.01, id="holding")],
)
def test_no_probe_while_holding_or_not_binding(binding: bool, now: float) -> None:
    rules = QuotaRules(None)
    state = steady(5.0, bad=10.0, bad_at=NOW - 1, probe_at=NOW)
    assert answer(rules, state, now, binding=binding) is None
    assert (state.rate, state.trial) == (5.0, None)


def test_no_probe_in_a_narrow_bracket() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, bad=5.0 * BRACKET * 0.999, bad_at=NOW - 1, probe_at=NOW, hold=4.0)
    assert answer(rules, state, NOW) is None
    assert (state.rate, state.trial) == (5.0, None)
    assert state.probe_at == NOW + 4.0


def test_probe_passes_after_probe_successes() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, bad=10.0, bad_at=NOW - 1, probe_at=NOW)
    answer(rules, state, NOW)
    assert answers(rules, state, "." * (PROBE_SUCCESSES - 1), start=NOW + 0.2, step=0.2) == []
    assert (state.good, state.trial) == (5.0, Trial.UP)
    assert answer(rules, state, NOW + 1) is None  # the rate in force stays
    assert (state.rate, state.good, state.bad, state.trial) == (7.5, 7.5, 10.0, None)
    assert state.probe_at == NOW + 1 + PROBE_HOLD
    # The next probe halves the bracket again.
    assert answer(rules, state, NOW + 1 + PROBE_HOLD) == "rate 7.5/s -> 8.75/s: probing"


@pytest.mark.parametrize(
    ("hold", "next_hold"), [(PROBE_HOLD, 2 * PROBE_HOLD), (16.0, MAX_PROBE_HOLD), (30.0, 30.0)]
)
def test_failed_probe_sets_bad_and_doubles_the_hold(hold: float, next_hold: float) -> None:
    assert MAX_PROBE_HOLD == 30.0
    rules = QuotaRules(None)
    state = steady(5.0, probe_at=NOW, hold=hold)
    answer(rules, state, NOW)
    answer(rules, state, NOW + 0.2)
    assert answer(rules, state, NOW + 0.4, refused=True) == "rate 10/s -> 5/s: refused at 10/s"
    assert (state.rate, state.good, state.bad, state.bad_at) == (5.0, 5.0, 10.0, NOW + 0.4)
    assert state.hold == next_hold
    assert state.probe_at == NOW + 0.4 + next_hold


def test_a_refused_rate_is_forgotten_after_bad_ttl() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, bad=10.0, bad_at=NOW - BAD_TTL, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 7.5/s: probing"  # not yet
    state = steady(5.0, bad=10.0, bad_at=NOW - BAD_TTL - 0.01, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 10/s: probing"
    assert state.bad == math.inf


def test_noisy_probe_needs_more_answers_and_fails_on_too_many_refusals() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, noise=0.3, probe_at=NOW)
    answer(rules, state, NOW)
    assert state.rate == 10.0
    # 7 of 10 refused where 3 are expected: more than chance explains.
    assert answers(rules, state, ".x.x.xxxx", start=NOW, step=0.1) == []
    assert answer(rules, state, NOW + 1, refused=True) == "rate 10/s -> 5/s: refused at 10/s"
    assert state.sent == 0
    assert (state.bad, state.hold) == (10.0, 2 * PROBE_HOLD)


def test_noisy_probe_passes_with_the_expected_refusals() -> None:
    rules = QuotaRules(None)
    state = steady(5.0, noise=0.3, probe_at=NOW, bad=20.0, bad_at=NOW)
    answer(rules, state, NOW)
    assert answers(rules, state, ".x.x.x....", start=NOW, step=0.1) == []
    assert (state.rate, state.good, state.trial) == (12.5, 12.5, None)
    assert NOISY_TRIAL == 10


@pytest.mark.parametrize(("ceiling", "resumed"), [(None, True), (40.0, False)])
def test_a_doubling_probe_that_passes_resumes_slow_start(
    ceiling: float | None, resumed: bool
) -> None:
    # Nothing refused above the rate: as good as slow start, so it goes on doubling.
    rules = QuotaRules(ceiling)
    state = steady(5.0, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 10/s: probing"
    why = answers(rules, state, "." * PROBE_SUCCESSES, start=NOW + 0.1, step=0.1)
    assert why == (["rate 10/s -> 20/s: slow start"] if resumed else [])
    assert state.slow_start is resumed


# --- the ceiling ---------------------------------------------------------------------------------


def test_at_the_ceiling_nothing_is_probed() -> None:
    rules = QuotaRules(5.0)
    state = QuotaEstimate.initial(5.0, adaptive=True)
    assert answers(rules, state, "." * 50, start=NOW, step=0.2) == []
    assert state.rate == 5.0
    assert state.trial is None


def test_probes_stop_at_the_ceiling() -> None:
    rules = QuotaRules(8.0)
    state = steady(5.0, probe_at=NOW)
    assert answer(rules, state, NOW) == "rate 5/s -> 8/s: probing"
    answers(rules, state, "." * PROBE_SUCCESSES, start=NOW, step=0.2)
    assert (state.rate, state.good, state.trial) == (8.0, 8.0, None)
    assert answers(rules, state, "." * 50, start=NOW + 100, step=0.2) == []
    assert state.rate == 8.0


@settings(max_examples=200, deadline=None)
@given(
    ceiling=st.sampled_from([None, 0.5, 5.0, 40.0]),
    events=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=3.0),
            st.booleans(),
            st.booleans(),
            st.booleans(),
        ),
        max_size=120,
    ),
)
def test_the_rate_never_exceeds_the_ceiling(
    ceiling: float | None, events: list[tuple[float, bool, bool, bool]]
) -> None:
    rules = QuotaRules(ceiling)
    state = QuotaEstimate.initial(ceiling, adaptive=True)
    now = NOW
    for step, refused, binding, timed in events:
        now += step
        sent_at = now - 0.1 if timed else None
        answer(rules, state, now, refused=refused, binding=binding, sent_at=sent_at)
        assert state.rate is not None
        assert 0 < state.rate <= (MAX_RATE if ceiling is None else ceiling)
        assert 0.0 <= state.noise <= NOISE_CAP
        assert state.good <= state.rate or state.trial is Trial.DOWN


# --- refusals at a demonstrated rate -------------------------------------------------------------


def test_refusals_over_an_interval_start_a_downward_trial() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    # 3 refused, 5 accepted, the first and the last of them 1.4 s apart: 4 / 1.4 per second.
    why = answers(rules, state, ".x.x.x..", start=NOW, step=0.2, binding=False)
    assert why == ["rate 5/s -> 2.86/s: 38% refused at 5/s"]
    assert state.trial is Trial.DOWN
    assert state.rate == pytest.approx(4 / 1.4)
    assert (state.cut_from, state.cut_share) == (5.0, 3 / 8)
    assert (state.sent, state.refused) == (0, 0)


def test_downward_trial_goes_to_what_the_server_accepted() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    # 1 accepted in the 1.6 s that 8 answers 0.2 s apart stand for.
    answers(rules, state, "xxxxxxx.", start=NOW, step=0.2, binding=False)
    assert state.trial is Trial.DOWN
    assert state.rate == pytest.approx(1 / 1.6)


def test_downward_trial_halves_the_rate_when_nothing_was_accepted() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    why = answers(rules, state, "xxxxxxxx", start=NOW, step=0.2, binding=False)
    assert why == ["rate 5/s -> 2.5/s: 100% refused at 5/s"]
    assert (state.rate, state.trial) == (2.5, Trial.DOWN)


def test_downward_trial_goes_to_the_rate_the_refused_share_leaves() -> None:
    # 7 accepted in 1.05 s, more than the 15 of 16 the refused share leaves.
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x.......", start=NOW, step=0.15, binding=False)
    assert state.rate == pytest.approx((1 - 1 / 16) * 5.0)


def test_downward_trial_goes_to_min_rate_at_least() -> None:
    rules = QuotaRules(None)
    state = steady(1.0)
    # 1 accepted in 70 s: far below MIN_RATE.
    answers(rules, state, "x.xxxxxx", start=NOW, step=10.0, binding=False)
    assert state.rate == MIN_RATE


def test_downward_trial_never_below_min_rate() -> None:
    rules = QuotaRules(None)
    state = steady(MIN_RATE)
    answers(rules, state, "xxxxxxxx", start=NOW, step=25.0, binding=False)
    assert state.trial is Trial.DOWN
    assert state.rate is not None
    assert state.rate >= MIN_RATE


@pytest.mark.parametrize(
    ("pattern", "step"),
    [
        pytest.param("x" * (INTERVAL_REQUESTS - 1), 1.0, id="too few answers"),
        pytest.param("x" * 40, INTERVAL / 50, id="too short a time"),
    ],
)
def test_no_downward_trial_before_an_interval(pattern: str, step: float) -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    assert answers(rules, state, pattern, start=NOW, step=step, binding=False) == []
    assert (state.rate, state.trial) == (5.0, None)


@pytest.mark.parametrize(
    ("noise", "refused", "cut"),
    [(0.0, 0, False), (0.0, 1, True), (0.2, 2, False), (0.2, 3, True)],
)
def test_downward_trial_only_above_the_tolerated_share(
    noise: float, refused: int, cut: bool
) -> None:
    # The threshold is 1.5 * noise + 0.05: 5 % without noise, 35 % at 20 %.
    rules = QuotaRules(None)
    state = steady(5.0, noise=noise)
    answers(rules, state, "x" * refused + "." * (8 - refused), start=NOW, step=0.2, binding=False)
    assert (state.trial is Trial.DOWN) is cut
    assert state.sent == 0  # the interval was judged either way


def _down(rate: float, cut_from: float, cut_share: float, **fields: object) -> QuotaEstimate:
    return steady(rate, trial=Trial.DOWN, cut_from=cut_from, cut_share=cut_share, **fields)


def test_downward_trial_whose_refusals_halve_confirms_a_shared_quota() -> None:
    rules = QuotaRules(None)
    state = _down(3.0, 5.0, 0.4, good=5.0, hold=16.0)
    assert answers(rules, state, "x......", start=NOW, step=0.3) == []  # not an interval yet
    assert (state.trial, state.sent) == (Trial.DOWN, 7)
    answer(rules, state, NOW + 2.1)
    assert (state.rate, state.good, state.bad, state.bad_at) == (3.0, 3.0, 5.0, NOW + 2.1)
    assert (state.trial, state.noise) == (None, 0.0)
    assert state.hold == PROBE_HOLD
    assert state.probe_at == NOW + 2.1 + PROBE_HOLD
    # Then it probes between the rate that passes and the one that was refused.
    assert answer(rules, state, NOW + 2.1 + PROBE_HOLD) == "rate 3/s -> 4/s: probing"


@pytest.mark.parametrize(("ceiling", "slow_start"), [(None, True), (8.0, False)])
def test_downward_trial_whose_refusals_stay_sets_noise_and_restores_the_rate(
    ceiling: float | None, slow_start: bool
) -> None:
    rules = QuotaRules(ceiling)
    state = _down(3.0, 5.0, 0.4, good=3.0, bad=5.0)
    why = answers(rules, state, "xx.x....", start=NOW, step=0.2)
    assert why == ["rate 3/s -> 5/s: refusals (39%) do not fall with the rate"]
    assert state.noise == pytest.approx((3 / 8 + 0.4) / 2)
    assert (state.rate, state.good, state.bad, state.trial) == (5.0, 5.0, math.inf, None)
    assert state.slow_start is slow_start


def test_noise_is_capped() -> None:
    rules = QuotaRules(None)
    state = _down(2.5, 5.0, 0.9)
    # Holding the rate for good takes twice the answers of an interval.
    answers(rules, state, "xxxxxxx.", start=NOW, step=0.2)
    assert (state.trial, state.noise) == (Trial.DOWN, 0.0)
    answers(rules, state, "xxxxxxx.", start=NOW + 1.6, step=0.2)
    assert state.noise == NOISE_CAP
    assert (state.rate, state.good, state.trial, state.slow_start) == (5.0, 5.0, None, False)
    # Held: a bracket of nothing is not probed until BAD_TTL passes.
    assert state.bad == 5.0
    assert state.bad_at == pytest.approx(NOW + 3.0)


def test_noise_only_grows() -> None:
    rules = QuotaRules(None)
    state = _down(4.0, 5.0, 0.1, noise=0.3)
    answers(rules, state, "x.......", start=NOW, step=0.2)
    assert state.noise == 0.3
    assert state.rate == 5.0


def test_tolerated_noise_does_not_start_a_downward_trial() -> None:
    rules = QuotaRules(None)
    state = _down(3.0, 5.0, 0.4, good=3.0, bad=5.0)
    answers(rules, state, "xx.x....", start=NOW, step=0.2)
    # The same share of refusals at the restored rate: tolerated.
    pattern = "xx.x....x.x....."
    assert answers(rules, state, pattern, start=NOW + 2, step=0.2, binding=False) == []
    assert state.rate == 5.0


def test_with_noise_capped_the_rate_is_held() -> None:
    rules = QuotaRules(None)
    state = _down(2.5, 5.0, 0.9)
    answers(rules, state, "xxxxxxx.xxxxxxx.", start=NOW, step=0.2, binding=False)
    assert state.noise == NOISE_CAP
    # "Unless most requests are refused (then just hold the rate)": no probe.
    assert answer(rules, state, state.probe_at) is None
    assert state.rate == 5.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate", "5"), ("good", None), ("sent", "many"), ("noise", [0.1]), ("trial", "inf")],
)
def test_from_wire_refuses_values_of_the_wrong_type(field: str, value: object) -> None:
    data = QuotaEstimate.initial(5.0, adaptive=True).to_wire(0.0)
    data[field] = value
    with pytest.raises(ValueError, match=r"^damaged quota record: "):
        QuotaEstimate.from_wire(data, 0.0)


# --- pairs of accepted requests: a lower bound on the quota that others do not hide -------------


def test_a_pair_after_a_refusal_bounds_the_quota() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x..", start=NOW, step=0.2, latency=0.08, binding=False)
    assert state.pair_rate == pytest.approx(5.0)
    assert state.pair_at == pytest.approx(NOW + 0.4)


def test_a_pair_without_a_refusal_before_it_says_nothing() -> None:
    # A server's burst may have saved tokens: accepted requests close together
    # bound the quota only when a refusal just before shows the bucket empty.
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "....", start=NOW, step=0.2, latency=0.08, binding=False)
    assert state.pair_rate == 0.0
    # A refusal two slots before does not count either.
    answer(rules, state, NOW + 1, refused=True, sent_at=NOW + 0.9, binding=False)
    answer(rules, state, NOW + 1.4, sent_at=NOW + 1.3, binding=False)
    answer(rules, state, NOW + 1.6, sent_at=NOW + 1.5, binding=False)
    assert state.pair_rate == 0.0


def test_only_a_pair_as_close_comes_to_refresh_the_bound() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x..", start=NOW, step=0.2, latency=0.08, binding=False)
    # A pair at 4/s does not refresh it.
    answers(rules, state, "x..", start=NOW + 2, step=0.25, latency=0.08, binding=False)
    assert (state.pair_rate, state.pair_at) == (pytest.approx(5.0), pytest.approx(NOW + 0.4))
    step = 0.2 * 1.01  # close enough
    answers(rules, state, "x..", start=NOW + 4, step=step, latency=0.08, binding=False)
    assert state.pair_rate == pytest.approx(5.0)
    assert state.pair_at == pytest.approx(NOW + 4 + 2 * step)


def test_a_pair_is_forgotten_after_pair_ttl() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x..", start=NOW, step=0.2, latency=0.08, binding=False)
    # A pair at 4/s replaces it only once it is forgotten.
    answers(rules, state, "x..", start=NOW + 1, step=0.25, latency=0.08, binding=False)
    assert state.pair_rate == pytest.approx(5.0)
    start = NOW + 0.4 + PAIR_TTL + 0.01
    answers(rules, state, "x..", start=start, step=0.25, latency=0.08, binding=False)
    assert state.pair_rate == pytest.approx(4.0)


def test_accepted_answers_out_of_order_make_no_pair() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answer(rules, state, NOW, refused=True, sent_at=NOW - 0.1, binding=False)
    answer(rules, state, NOW + 0.3, sent_at=NOW + 0.2, binding=False)
    answer(rules, state, NOW + 0.35, sent_at=NOW + 0.1, binding=False)  # before the latest
    assert state.pair_rate == 0.0
    assert state.ok_sent == NOW + 0.2


def test_refusals_at_a_rate_that_pairs_pass_are_tolerated_without_a_trial() -> None:
    # Another client takes part of the quota: our refusals come, but two of our
    # requests a slot apart still pass. Cutting would only hand our share over.
    rules = QuotaRules(None)
    state = steady(5.0, bad=10.0, bad_at=NOW)
    why = answers(rules, state, "x..x..x..x", start=NOW, step=0.2, binding=False, latency=0.08)
    assert why == []  # the rate stays, so no change is reported
    assert (state.rate, state.trial, state.good) == (5.0, None, 5.0)
    assert state.noise == pytest.approx(3 / 8)  # judged at the eighth answer
    assert (state.bad, state.slow_start) == (math.inf, True)


def test_refusals_at_a_rate_no_pair_passes_start_a_trial() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x.x.x.x.x", start=NOW, step=0.2, binding=False, latency=0.08)
    assert state.pair_rate == pytest.approx(2.5)
    assert state.trial is Trial.DOWN


def test_slow_start_falls_back_no_lower_than_a_pair_passed() -> None:
    # What was accepted over the last second is our share; a pair of requests
    # accepted a slot of 8/s apart shows the quota is at least that.
    rules = QuotaRules(None)
    state = QuotaEstimate(rate=20.0, good=10.0, trial=Trial.UP)
    state.second, state.second_ok = NOW - 0.5, 1
    answer(rules, state, NOW, refused=True, sent_at=NOW - 0.1)
    assert state.rate == 5.0  # 2/s accepted over the last second; the documented 5/s
    state = QuotaEstimate(rate=20.0, good=10.0, trial=Trial.UP, pair_rate=8.0, pair_at=NOW)
    state.second, state.second_ok = NOW - 0.5, 1
    answer(rules, state, NOW, refused=True, sent_at=NOW - 0.1)
    assert state.rate == 8.0


# --- what a downward trial keeps --------------------------------------------------------------


def test_a_downward_trial_that_costs_accepted_requests_is_undone() -> None:
    # Refusals fell, but so did what was accepted: they were not ours.
    rules = QuotaRules(None)
    state = _down(2.5, 5.0, 0.5, cut_accepted=2.5)
    # 4 accepted, the first and the last 1.96 s apart: 1.53/s, below KEPT * 2.5.
    why = answers(rules, state, ".xx.xx..", start=NOW, step=0.2 * 1.4)
    assert KEPT * 2.5 > 3 / 1.96
    assert why == ["rate 2.5/s -> 5/s: refusals (50%) do not fall with the rate"]
    assert state.noise == NOISE_CAP


def test_a_downward_trial_that_keeps_accepted_requests_is_kept() -> None:
    rules = QuotaRules(None)
    state = _down(2.5, 5.0, 0.5, cut_accepted=2.5)
    answers(rules, state, ".......x", start=NOW, step=0.4)
    assert (state.rate, state.good, state.bad, state.trial) == (2.5, 2.5, 5.0, None)


def test_a_costly_trial_is_undone_after_one_interval_even_when_most_is_refused() -> None:
    rules = QuotaRules(None)
    state = _down(2.5, 5.0, 0.9, cut_accepted=2.5)
    answers(rules, state, "xxxxxxx.", start=NOW, step=0.2)
    assert (state.trial, state.rate, state.noise) == (None, 5.0, NOISE_CAP)


# --- documented quotas ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "step", "rate"),
    [
        # At 5/s, 3 accepted 1.2 s apart: a quota of 1 with a slot of wait each.
        pytest.param("." + "xxxxx." * 2, 0.2, 1.0, id="one slot late"),
        # At 20/s, 3/s accepted: a quota of 5 would have let one in 0.25 s through.
        pytest.param("xxxx." * 4, 1 / 15, None, id="not explained"),
    ],
)
def test_a_downward_trial_goes_to_a_documented_quota_the_gaps_explain(
    pattern: str, step: float, rate: float | None
) -> None:
    rules = QuotaRules(None)
    state = steady(5.0 if rate else 20.0)
    answers(rules, state, pattern, start=NOW, step=step, binding=False)
    assert state.trial is Trial.DOWN
    measured = (pattern.count(".") - 1) / (pattern.rindex(".") - pattern.index(".")) / step
    if rate is None:
        assert state.rate == pytest.approx(measured)
    else:
        assert measured < rate <= SNAP * measured
        assert state.rate == rate


def test_no_documented_quota_is_tried_at_the_rate_in_force() -> None:
    rules = QuotaRules(None)
    state = steady(5.0)
    answers(rules, state, "x.......", start=NOW, step=0.15, binding=False)
    assert state.trial is Trial.DOWN
    assert state.rate is not None
    assert state.rate < 5.0


# --- the probe must pay ---------------------------------------------------------------------------


def test_a_noisy_probe_must_deliver_half_its_gain() -> None:
    # At twice the rate, with 47 % refusals tolerated, a probe must not be
    # refused more than 60 % (accepting 1.5 x as much): 7 of 16 accepted is not.
    rules = QuotaRules(None)
    state = steady(5.0, noise=0.47, probe_at=NOW)
    answer(rules, state, NOW)
    assert state.rate == 10.0
    why = answers(rules, state, "x.xx.xx.xx.xx.x.", start=NOW, step=0.1)
    assert why == ["rate 10/s -> 5/s: refused at 10/s"]
