"""The measuring engine of ``memories-async bench``: throughput and latency by concurrency.

:func:`sweep` fetches the same transcripts at each concurrency level through the SDK's
batch engine (:meth:`MemoriesClient.fetch_transcriptions`), each level with a fresh client
(fresh connection pool and rate governor) and de-duplication off so that every request
counts; :func:`measure_level` measures one level into a :class:`LevelResult` (latency
percentiles from the batch's own statistics), and :func:`suggestions` turns a sweep into
advice: a ``max_concurrency``, and a ``rate`` when the service rate-limited the requests.
No click, no rich: the command, its tables, charts and files are in
:mod:`memories_async._cli.bench`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import attrs

from ._batch import Failed
from ._client import MemoriesClient
from ._config import Config
from ._converter import structure_transcript
from ._errors import APIError, HTTPStatusError, MemoriesError
from ._models import TranscriptKind

DEFAULT_LEVELS: Final = (1, 4, 16, 64)
"""Concurrency levels swept when none are given."""
MAX_LEVEL: Final = 4096
"""The largest concurrency level accepted."""
LEVEL_PAUSE: Final = 1.0
"""Seconds between levels when a rate limit is in play, so each level starts afresh."""
KNEE: Final = 0.9
"""A level within this share of the best throughput is good enough to suggest."""
RATE_LIMITED_NOTE: Final = 0.01
"""Share of ``0429`` answers above which the summary suggests setting ``--rate``."""
CSV_COLUMNS: Final = (
    "concurrency",
    "requests",
    "succeeded",
    "failed",
    "seconds",
    "throughput",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "attempts",
    "retries",
    "rate_limited",
    "rate_limited_share",
)
"""The keys of :meth:`LevelResult.as_row`, in order."""


@attrs.frozen(kw_only=True)
class LevelResult:
    """What one concurrency level measured.

    ``elapsed`` is seconds from the batch start to its last outcome; latencies
    are seconds per successful transcript, retries included. ``rate_limited``
    counts ``0429`` answers (and HTTP 429), retried or final; ``attempts`` every
    request sent. ``errors`` counts the failed transcripts by error kind.
    """

    concurrency: int
    requests: int
    succeeded: int
    failed: int
    elapsed: float
    attempts: int
    retries: int
    rate_limited: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    errors: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def throughput(self) -> float:
        """Successful transcripts per second."""
        return self.succeeded / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def rate_limited_share(self) -> float:
        """Share of the requests sent that were answered ``0429``."""
        return self.rate_limited / self.attempts if self.attempts else 0.0

    def as_row(self) -> dict[str, Any]:
        """The flat record written to CSV and JSON (milliseconds for latencies)."""
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "seconds": round(self.elapsed, 4),
            "throughput": round(self.throughput, 3),
            "latency_p50_ms": _ms(self.latency_p50),
            "latency_p95_ms": _ms(self.latency_p95),
            "latency_p99_ms": _ms(self.latency_p99),
            "attempts": self.attempts,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "rate_limited_share": round(self.rate_limited_share, 4),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def parse_levels(text: str, /) -> tuple[int, ...]:
    """Parse ``"1,4,16,64"`` into sorted, distinct concurrency levels.

    Raises :class:`ValueError` with a message that says how to write the list.
    """
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise ValueError("give at least one level, e.g. 1,4,16,64")
    levels: set[int] = set()
    for part in parts:
        if not part:
            raise ValueError(f"empty level in {text!r}; write levels like 1,4,16,64")
        try:
            level = int(part)
        except ValueError:
            raise ValueError(
                f"{part!r} is not a whole number; write levels like 1,4,16,64"
            ) from None
        if not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"each level must be between 1 and {MAX_LEVEL}, got {level}")
        levels.add(level)
    return tuple(sorted(levels))


def _error_kind(error: MemoriesError) -> str:
    if isinstance(error, APIError):
        return f"{type(error).__name__} {error.code}"
    if isinstance(error, HTTPStatusError):
        return f"{type(error).__name__} {error.status}"
    return type(error).__name__


async def measure_level(
    config: Config,
    numbers: Sequence[str],
    concurrency: int,
    /,
    *,
    kind: TranscriptKind = TranscriptKind.VISUAL,
) -> LevelResult:
    """Fetch the transcripts of ``numbers`` at ``concurrency`` with a fresh client.

    The latency percentiles are the batch's (:class:`BatchStats`). Raises
    :class:`AccountHaltedError` when an account-wide error (bad key, no credits) stops the
    batch.
    """
    errors: Counter[str] = Counter()
    attempts = failed_rate_limited = 0
    async with MemoriesClient(config=config) as client:
        # The batch of fetch_transcriptions without its status lookups of empty answers:
        # a level measures transcript requests, and only those.
        fetch = functools.partial(
            client._fetch_answer, unique_id=None, public=None, structure=structure_transcript
        )
        batch = client._batch(
            fetch, numbers, kinds=(TranscriptKind(kind),), max_concurrency=concurrency, dedupe=False
        )
        started = time.monotonic()
        async with batch:
            async for outcome in batch:
                attempts += max(outcome.attempts, 1)
                if isinstance(outcome, Failed):
                    errors[_error_kind(outcome.error)] += 1
                    failed_rate_limited += outcome.error.rate_limited
            elapsed = time.monotonic() - started
            stats = batch.stats()
    return LevelResult(
        concurrency=concurrency,
        requests=len(numbers),
        succeeded=stats.succeeded,
        failed=stats.failed,
        elapsed=elapsed,
        attempts=attempts,
        retries=stats.retries,
        rate_limited=stats.rate_limited + failed_rate_limited,
        latency_p50=stats.latency_p50,
        latency_p95=stats.latency_p95,
        latency_p99=stats.latency_p99,
        errors=dict(errors),
    )


async def sweep(
    config: Config,
    numbers: Sequence[str],
    levels: Sequence[int],
    /,
    *,
    requests: int,
    kind: TranscriptKind = TranscriptKind.VISUAL,
    pause: float = 0.0,
    status: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> list[LevelResult]:
    """Measure every level in turn over the first ``requests`` of ``numbers`` (cycled).

    ``pause`` seconds separate levels. ``status``, if given, is entered around each
    level with a line saying what is measured (the command shows a spinner with it).
    """
    chosen = list(itertools.islice(itertools.cycle(numbers), requests))
    results: list[LevelResult] = []
    for position, level in enumerate(levels):
        if position and pause > 0:
            await asyncio.sleep(pause)
        shown: AbstractContextManager[Any] = contextlib.nullcontext()
        if status is not None:
            shown = status(f"concurrency {level}: {requests} requests…")
        with shown:
            results.append(await measure_level(config, chosen, level, kind=kind))
    return results


def suggestions(results: Sequence[LevelResult], /) -> list[str]:
    """Plain-language advice drawn from a sweep: which concurrency, whether to set a rate."""
    if not results:
        return []
    lines: list[str] = []
    best = max(results, key=lambda r: r.throughput)
    if best.throughput > 0:
        knee = min(
            (r for r in results if r.throughput >= KNEE * best.throughput),
            key=lambda r: r.concurrency,
        )
        lines.append(
            f"best throughput {best.throughput:,.1f}/s at concurrency {best.concurrency};"
            f" concurrency {knee.concurrency} reaches {knee.throughput / best.throughput:.0%}"
            f" of it: suggested --concurrency {knee.concurrency}"
        )
    limited = [r for r in results if r.rate_limited_share > RATE_LIMITED_NOTE]
    if limited:
        first = min(limited, key=lambda r: r.concurrency)
        # 90 % of the best rate achieved: a short sweep also spends the server's
        # initial burst, so the achieved rate overstates the sustained limit.
        rate = max(0.1, math.floor(0.9 * max(r.throughput for r in limited) * 10) / 10)
        lines.append(
            f"{first.rate_limited_share:.0%} of requests were rate-limited (0429) from"
            f" concurrency {first.concurrency} on: set --rate to about {rate:g} requests/s"
        )
    failed = sum(r.failed for r in results)
    if failed:
        kinds: Counter[str] = Counter()
        for result in results:
            kinds.update(result.errors)
        common = ", ".join(f"{name} x{count}" for name, count in kinds.most_common(3))
        lines.append(f"{failed} transcript(s) failed after retries: {common}")
    return lines
