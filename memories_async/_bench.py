"""``memories-async bench``: throughput and latency against concurrency, to choose settings.

The command fetches ``--requests`` transcripts at each concurrency level of
``--concurrency`` (for instance ``1,4,16,64``) through the SDK's batch engine
(:meth:`MemoriesClient.fetch_transcriptions`), then prints one row per level:
transcripts per second, latency percentiles, errors, the share of ``0429``
(rate-limited) answers and the retries. It is the tool for choosing
``max_concurrency`` and ``rate``: throughput stops growing where the service, the
network or the rate limit becomes the bottleneck, and ``0429`` answers say that
``rate`` should be set.

Two targets:

* the **embedded fake server** (the default), from :mod:`memories_async.testing`,
  run on a thread of this process (``--server thread``) or in a child process
  (``--server process``, which keeps the fake's CPU off the measured client), with
  ``--latency``, ``--fault-rate``, ``--qps`` and ``--videos`` shaping it;
* a **real account** with ``--ids FILE`` (one video number per line, ``-`` for
  standard input): the key comes from ``MEMORIES_API_KEY`` or ``--api-key-file``
  and is never printed, ``--base-url`` and ``--unique-id`` as for the other
  commands, and ``--rate`` caps the requests per second across every level.

Each level uses a fresh client (fresh connection pool and rate governor) and
fetches the first ``--requests`` numbers, cycling when there are fewer, with
de-duplication off so that every request counts. ``--csv``, ``--json`` and
``--chart`` (PNG, needs matplotlib: ``pip install 'memories-async[bench]'``) save
the results. click and rich are imported here only, so the core SDK imports
without the ``cli`` extra.

Exit codes: 0 when the sweep ran (failed requests are results, not errors), 1
when an account-wide error stopped it (no credits, account disabled) or an
output could not be written, 2 for a usage error, a missing key or a key the
service rejects.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs
import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from ._batch import Failed
from ._client import MemoriesClient
from ._config import ENV_API_KEY, Config
from ._errors import (
    AccountError,
    AccountHaltedError,
    APIError,
    AuthenticationError,
    ConfigError,
    HTTPStatusError,
    MemoriesError,
)
from ._ids import IdInputError, iter_id_lines
from ._models import TranscriptKind

if TYPE_CHECKING:
    from .testing import FakeServerOptions

DEFAULT_LEVELS: Final = (1, 4, 16, 64)
"""Concurrency levels swept when ``--concurrency`` is not given."""
MAX_LEVEL: Final = 4096
"""The largest concurrency level accepted."""
LEVEL_PAUSE: Final = 1.0
"""Seconds between levels when a rate limit is in play, so each level starts afresh."""
KNEE: Final = 0.9
"""A level within this share of the best throughput is good enough to suggest."""
RATE_LIMITED_NOTE: Final = 0.01
"""Share of ``0429`` answers above which the summary suggests setting ``--rate``."""
FAKE_ONLY: Final = ("latency", "fault_rate", "qps", "videos", "seed", "server")
REAL_ONLY: Final = ("base_url", "api_key_file", "unique_id")
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
_CONTEXT: Final = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_INSTALL_HINT: Final = "pip install 'memories-async[bench]'"


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


def percentile(ordered: Sequence[float], q: float, /) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of an ascending sequence; ``None`` if empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(len(ordered) * q / 100.0))
    return ordered[min(rank, len(ordered)) - 1]


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

    Raises :class:`AccountHaltedError` when an account-wide error (bad key, no
    credits) stops the batch.
    """
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    attempts = failed_rate_limited = 0
    async with MemoriesClient(config=config) as client:
        batch = client.fetch_transcriptions(
            numbers, kind=kind, max_concurrency=concurrency, dedupe=False
        )
        started = time.monotonic()
        async with batch:
            async for outcome in batch:
                attempts += max(outcome.attempts, 1)
                if isinstance(outcome, Failed):
                    errors[_error_kind(outcome.error)] += 1
                    failed_rate_limited += outcome.error.rate_limited
                else:
                    latencies.append(outcome.elapsed)
            elapsed = time.monotonic() - started
            stats = batch.stats()
    latencies.sort()
    return LevelResult(
        concurrency=concurrency,
        requests=len(numbers),
        succeeded=stats.succeeded,
        failed=stats.failed,
        elapsed=elapsed,
        attempts=attempts,
        retries=stats.retries,
        rate_limited=stats.rate_limited + failed_rate_limited,
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        latency_p99=percentile(latencies, 99),
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
    console: Console | None = None,
) -> list[LevelResult]:
    """Measure every level in turn over the first ``requests`` of ``numbers`` (cycled).

    ``pause`` seconds separate levels. Progress goes to ``console`` (a spinner
    on a terminal, nothing otherwise).
    """
    chosen = list(itertools.islice(itertools.cycle(numbers), requests))
    results: list[LevelResult] = []
    for position, level in enumerate(levels):
        if position and pause > 0:
            await asyncio.sleep(pause)
        status: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if console is not None:
            status = console.status(f"concurrency {level}: {requests} requests…")
        with status:
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


def results_table(results: Sequence[LevelResult], /, *, title: str | None = None) -> Table:
    """A rich table with one row per level."""
    table = Table(title=title, title_justify="left")
    for header in (
        "concurrency",
        "requests",
        "ok",
        "errors",
        "transcripts/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "0429 %",
        "retries",
        "seconds",
    ):
        table.add_column(header, justify="right", no_wrap=True)

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value * 1000:,.1f}"

    for r in results:
        table.add_row(
            str(r.concurrency),
            str(r.requests),
            str(r.succeeded),
            str(r.failed),
            f"{r.throughput:,.1f}",
            ms(r.latency_p50),
            ms(r.latency_p95),
            ms(r.latency_p99),
            f"{100 * r.rate_limited_share:.1f}",
            str(r.retries),
            f"{r.elapsed:.2f}",
        )
    return table


def write_csv(path: Path, results: Sequence[LevelResult], /) -> None:
    """One row per level, columns :data:`CSV_COLUMNS`."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerow(result.as_row())


def write_json(
    path: Path, results: Sequence[LevelResult], /, *, settings: Mapping[str, Any]
) -> None:
    """The settings, one record per level (with error kinds) and the suggestions."""
    document = {
        "settings": dict(settings),
        "levels": [{**r.as_row(), "errors": dict(r.errors)} for r in results],
        "suggestions": suggestions(results),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def require_matplotlib() -> None:
    """Raise :class:`click.ClickException` with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.ClickException(f"--chart needs matplotlib: {_INSTALL_HINT}") from None


def write_chart(path: Path, results: Sequence[LevelResult], /, *, title: str) -> None:
    """A PNG: throughput, and latency percentiles, against concurrency (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r.concurrency for r in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    left.plot(levels, [r.throughput for r in results], "o-", color="tab:blue")
    left.set_ylabel("transcripts per second")
    for label, values, style in (
        ("p50", [r.latency_p50 for r in results], "o-"),
        ("p95", [r.latency_p95 for r in results], "s--"),
        ("p99", [r.latency_p99 for r in results], "^:"),
    ):
        points = [(c, v * 1000) for c, v in zip(levels, values, strict=True) if v is not None]
        right.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
    right.set_ylabel("latency (ms)")
    right.legend()
    for axes in (left, right):
        axes.set_xscale("log", base=2)
        axes.set_xticks(levels, [str(level) for level in levels])
        axes.set_xlabel("concurrency")
        axes.grid(True, alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# -- targets --------------------------------------------------------------------------------


@attrs.frozen
class _Target:
    """Where the sweep sends its requests."""

    config: Config
    numbers: tuple[str, ...]
    description: str


@contextlib.contextmanager
def _fake_target(fake: FakeServerOptions, *, server: str, rate: float | None) -> Iterator[_Target]:
    """Start the embedded fake server (thread or child process) and yield where it listens."""
    from .testing import DEFAULT_API_KEY, FakeServerThread, build_fake_server

    shape = (
        f"{fake.videos} videos, latency {fake.latency * 1000:g} ms, fault rate {fake.fault_rate:g}"
    )
    shape += f", {fake.qps:g} QPS limit" if fake.qps is not None else ""
    numbers = tuple(v.video_no for v in fake.library() if not v.is_public)
    if server == "thread":
        with FakeServerThread(build_fake_server(fake)) as running:
            config = Config(api_key=running.api_key, base_url=running.url, rate=rate)
            yield _Target(config, numbers, f"embedded fake server (thread; {shape})")
        return
    argv = [sys.executable, "-m", "memories_async.testing", *fake.to_argv()]
    # Our own interpreter running our own module.
    with subprocess.Popen(  # noqa: S603
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            if not url.startswith("http"):
                raise click.ClickException("the fake server process did not start")
            config = Config(api_key=DEFAULT_API_KEY, base_url=url, rate=rate)
            yield _Target(config, numbers, f"embedded fake server (process; {shape})")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck child
                process.kill()


def _read_key(api_key_file: Path | None) -> str:
    if api_key_file is not None:
        try:
            lines = api_key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise click.UsageError(f"cannot read --api-key-file {api_key_file}") from None
        if not lines or not lines[0].strip():
            raise click.UsageError(
                f"--api-key-file {api_key_file} is empty: its first line must hold the key"
            )
        return lines[0].strip()
    key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        raise click.UsageError(
            f"--ids benchmarks a real account and needs its key: set {ENV_API_KEY}"
            " or pass --api-key-file FILE"
        )
    return key


def _read_ids(stream: IO[bytes], name: str, limit: int) -> tuple[str, ...]:
    try:
        # The bench measures video numbers: a kind in an id line is not its business.
        numbers = tuple(
            item if isinstance(item, str) else item[0]
            for _, item in itertools.islice(iter_id_lines(stream, name), limit)
        )
    except IdInputError as exc:
        raise click.UsageError(str(exc)) from None
    if not numbers:
        raise click.UsageError(f"no video numbers in {name}: give one per line")
    return numbers


def _real_target(
    ids: IO[bytes],
    *,
    requests: int,
    base_url: str | None,
    api_key_file: Path | None,
    unique_id: str | None,
    rate: float | None,
) -> _Target:
    name = "<stdin>" if getattr(ids, "name", "-") in ("-", "<stdin>") else str(ids.name)
    numbers = _read_ids(ids, name, requests)
    key = _read_key(api_key_file)
    try:
        config = Config.from_env(api_key=key, base_url=base_url, unique_id=unique_id, rate=rate)
    except ConfigError as exc:
        raise click.UsageError(str(exc).replace(key, "***")) from None
    rate_text = f", --rate {rate:g}/s" if rate is not None else ""
    return _Target(config, numbers, f"{config.base_url} ({len(numbers)} ids{rate_text})")


class _Failed(click.ClickException):
    """Ends the command with a one-line error and exit code 1."""

    exit_code = 1


class _Rejected(click.ClickException):
    """Ends the command with a one-line error and exit code 2: the key was refused."""

    exit_code = 2


def _check_sources(ctx: click.Context, real: bool) -> None:
    given = [
        name
        for name in (FAKE_ONLY if real else REAL_ONLY)
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if not given:
        return
    flags = ", ".join("--" + name.replace("_", "-") for name in given)
    if real:
        raise click.UsageError(
            f"{flags} shape(s) the embedded fake server and cannot be used with --ids"
        )
    raise click.UsageError(
        f"{flags} only apply to a real account: add --ids FILE, or drop them to"
        " benchmark the embedded fake server"
    )


@click.command("bench", context_settings=_CONTEXT)
@click.option(
    "--concurrency",
    "levels_text",
    default=",".join(map(str, DEFAULT_LEVELS)),
    show_default=True,
    metavar="N[,N...]",
    help="Concurrency levels to sweep (requests in flight).",
)
@click.option(
    "--requests",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    metavar="N",
    help="Transcripts fetched at each level.",
)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in TranscriptKind]),
    default=TranscriptKind.VISUAL.value,
    show_default=True,
    help="Which transcript to fetch.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="QPS",
    help="Client-side cap on requests per second (the SDK's rate=); default: none.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0, max=60),
    default=0.05,
    show_default=True,
    metavar="SECONDS",
    help="Fake server: delay before each answer.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="P",
    help="Fake server: probability of an injected fault (5xx, reset, bad JSON...).",
)
@click.option(
    "--qps",
    type=click.FloatRange(min=0, min_open=True),
    metavar="QPS",
    help="Fake server: rate limit, answered with code 0429 (default: none).",
)
@click.option(
    "--videos",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    metavar="N",
    help="Fake server: videos in its generated library.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, metavar="N", help="Fake server: seed."
)
@click.option(
    "--server",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
    help="Fake server: on a thread of this process, or in a child process (its CPU then"
    " does not compete with the client's).",
)
@click.option(
    "--ids",
    type=click.File("rb"),
    metavar="FILE",
    help="Benchmark a real account instead, over these video numbers (one per line;"
    f" '-' for stdin). The key comes from ${ENV_API_KEY} or --api-key-file.",
)
@click.option("--base-url", metavar="URL", help="With --ids: the service address.")
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="With --ids: read the key from the first line of FILE. The key is never printed.",
)
@click.option("--unique-id", metavar="NAME", help="With --ids: the namespace of the videos.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Also write the results as CSV.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Also write the results, settings and suggestions as JSON.",
)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE.png",
    help=f"Also draw throughput and latency against concurrency (needs {_INSTALL_HINT}).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    /,
    *,
    levels_text: str,
    requests: int,
    kind: str,
    rate: float | None,
    latency: float,
    fault_rate: float,
    qps: float | None,
    videos: int,
    seed: int,
    server: str,
    ids: IO[bytes] | None,
    base_url: str | None,
    api_key_file: Path | None,
    unique_id: str | None,
    csv_path: Path | None,
    json_path: Path | None,
    chart_path: Path | None,
) -> None:
    """Measure throughput and latency at several concurrency levels, to choose settings.

    Against the embedded fake server by default, or a real account with --ids FILE.
    Prints one row per level: transcripts per second, latency percentiles, errors,
    the share of rate-limited (0429) answers and retries; then a suggested
    --concurrency, and a --rate when the service rate-limited the requests.
    """
    try:
        levels = parse_levels(levels_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--concurrency'") from None
    real = ids is not None
    _check_sources(ctx, real)
    if chart_path is not None:
        require_matplotlib()
    transcript_kind = TranscriptKind(kind)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, highlight=False)

    if ids is not None:
        target = _real_target(
            ids,
            requests=requests,
            base_url=base_url,
            api_key_file=api_key_file,
            unique_id=unique_id,
            rate=rate,
        )
        results = _run(
            target,
            levels=levels,
            requests=requests,
            kind=transcript_kind,
            pause=LEVEL_PAUSE,
            console=err,
        )
        settings: dict[str, Any] = {"target": "account", "base_url": target.config.base_url}
    else:
        pause = LEVEL_PAUSE if qps is not None else 0.0
        from .testing import FakeServerOptions

        fake = FakeServerOptions(
            videos=videos, seed=seed, latency=latency, fault_rate=fault_rate, qps=qps
        )
        with _fake_target(fake, server=server, rate=rate) as target:
            results = _run(
                target,
                levels=levels,
                requests=requests,
                kind=transcript_kind,
                pause=pause,
                console=err,
            )
        settings = {
            "target": "fake",
            "server": server,
            "videos": videos,
            "seed": seed,
            "latency": latency,
            "fault_rate": fault_rate,
            "qps": qps,
        }
    settings.update({"levels": list(levels), "requests": requests, "kind": kind, "rate": rate})

    out.print(results_table(results, title=f"memories-async bench: {target.description}"))
    for line in suggestions(results):
        out.print(f"• {line}")
    try:
        if csv_path is not None:
            write_csv(csv_path, results)
        if json_path is not None:
            write_json(json_path, results, settings=settings)
        if chart_path is not None:
            write_chart(chart_path, results, title=f"memories-async bench: {target.description}")
    except OSError as exc:
        raise _Failed(f"cannot write {exc.filename}: {exc.strerror}") from None


def _run(
    target: _Target,
    *,
    levels: Sequence[int],
    requests: int,
    kind: TranscriptKind,
    pause: float,
    console: Console,
) -> list[LevelResult]:
    key = target.config.api_key
    try:
        return asyncio.run(
            sweep(
                target.config,
                target.numbers,
                levels,
                requests=requests,
                kind=kind,
                pause=pause,
                console=console,
            )
        )
    except AccountHaltedError as exc:
        cause: AccountError = exc.cause
        message = str(cause).replace(key, "***")
        if isinstance(cause, AuthenticationError):
            raise _Rejected(message) from None
        raise _Failed(message) from None
