"""``memories-async bench``: throughput and latency against concurrency, to choose settings.

The command fetches ``--requests`` transcripts at each concurrency level of
``--concurrency`` (for instance ``1,4,16,64``) through the SDK's batch engine
(:func:`memories_async._bench.sweep`), then prints one row per level: transcripts per
second, latency percentiles, errors, the share of ``0429`` (rate-limited) answers and the
retries. It is the tool for choosing ``max_concurrency`` and ``rate``: throughput stops
growing where the service, the network or the rate limit becomes the bottleneck, and
``0429`` answers say that ``rate`` should be set.

Two targets:

* the **embedded fake server** (the default), from :mod:`memories_async.testing`,
  run on a thread of this process (``--server thread``) or in a child process
  (``--server process``, which keeps the fake's CPU off the measured client), with
  ``--latency``, ``--fault-rate``, ``--qps`` and ``--videos`` shaping it;
* a **real account** with ``--ids FILE`` (one video number per line, ``-`` for
  standard input): the key comes from ``MEMORIES_API_KEY`` or ``--api-key-file``
  and is never printed, ``--base-url`` and ``--unique-id`` as for the other
  commands, and ``--rate`` caps the requests per second across every level.

``--csv``, ``--json`` and ``--chart`` (PNG, needs matplotlib: ``pip install
'memories-async[bench]'``) save the results. The measuring itself (levels, results,
suggestions) is :mod:`memories_async._bench`, without click or rich.

The exit codes are :class:`~memories_async._cli.exits.ExitCode`, with the meanings of
:data:`EXIT_MEANINGS` (shown by ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

import attrs
import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from .._bench import (
    CSV_COLUMNS,
    DEFAULT_LEVELS,
    LEVEL_PAUSE,
    LevelResult,
    parse_levels,
    suggestions,
    sweep,
)
from .._config import ENV_API_KEY, Config
from .._errors import AccountHaltedError
from .._ids import IdInputError, iter_id_lines
from .._models import TranscriptKind
from .._redact import Redactor
from ..testing import FakeServerOptions
from ..testing._options import option_spec
from .common import AccountOptions, Stop, client_config, exit_code_for
from .exits import ExitCode, exit_codes
from .options import command, group, names, option

INSTALL_HINT: Final = "pip install 'memories-async[bench]'"
EXIT_MEANINGS: Final = {
    ExitCode.OK: "the sweep ran (failed requests are results, not errors)",
    ExitCode.FAILED: "an account-wide error stopped it (no credits, account disabled) or an"
    " output could not be written",
    ExitCode.USAGE: "a usage error, a missing key or a key the service rejects",
}


def fake_server_option(name: str, *, default: Any, help: str | None = None) -> Any:
    """The fake server's option ``name`` (its flag, help and checks, declared once in
    :class:`~memories_async.testing.FakeServerOptions`), with the bench's default."""
    flag, spec = option_spec(name)
    parse = spec.parse
    assert parse is not None, f"{name!r} is not an option with a value"

    def read(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        try:
            return None if value is None else parse(value)
        except argparse.ArgumentTypeError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return option(
        flag,
        callback=read,
        default=default,
        show_default=default is not None,
        metavar=spec.metavar,
        help=f"Fake server: {help or spec.help}.",
    )


@attrs.frozen(kw_only=True)
class FakeTargetOptions:
    """The options that shape the embedded fake server (not with ``--ids``)."""

    latency: float = fake_server_option("latency", default=0.05)
    fault_rate: float = fake_server_option("fault_rate", default=0.0)
    qps: float | None = fake_server_option(
        "qps", default=None, help="rate limit, answered with code 0429"
    )
    videos: int = fake_server_option("videos", default=1000)
    seed: int = fake_server_option("seed", default=0)
    server: str = option(
        "--server",
        type=click.Choice(["thread", "process"]),
        default="thread",
        show_default=True,
        help="Fake server: on a thread of this process, or in a child process (its CPU then"
        " does not compete with the client's).",
    )

    def fake_server(self) -> FakeServerOptions:
        """The fake server's own options."""
        return FakeServerOptions(
            videos=self.videos,
            seed=self.seed,
            latency=self.latency,
            fault_rate=self.fault_rate,
            qps=self.qps,
        )


@attrs.frozen(kw_only=True)
class BenchOptions:
    """The options of ``bench``."""

    levels_text: str = option(
        "--concurrency",
        default=",".join(map(str, DEFAULT_LEVELS)),
        show_default=True,
        metavar="N[,N...]",
        help="Concurrency levels to sweep (requests in flight).",
    )
    requests: int = option(
        "--requests",
        type=click.IntRange(min=1),
        default=200,
        show_default=True,
        metavar="N",
        help="Transcripts fetched at each level.",
    )
    kind: str = option(
        "--kind",
        type=click.Choice([k.value for k in TranscriptKind]),
        default=TranscriptKind.VISUAL.value,
        show_default=True,
        help="Which transcript to fetch.",
    )
    rate: float | None = option(
        "--rate",
        type=click.FloatRange(min=0, min_open=True),
        metavar="QPS",
        help="Client-side cap on requests per second (the SDK's rate=); default: none.",
    )
    fake: FakeTargetOptions = group(FakeTargetOptions)
    ids: IO[bytes] | None = option(
        "--ids",
        type=click.File("rb"),
        metavar="FILE",
        help="Benchmark a real account instead, over these video numbers (one per line;"
        f" '-' for stdin). The key comes from ${ENV_API_KEY} or --api-key-file.",
    )
    account: AccountOptions = group(AccountOptions)
    csv_path: Path | None = option(
        "--csv",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        metavar="FILE",
        help="Also write the results as CSV.",
    )
    json_path: Path | None = option(
        "--json",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        metavar="FILE",
        help="Also write the results, settings and suggestions as JSON.",
    )
    chart_path: Path | None = option(
        "--chart",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        metavar="FILE.png",
        help=f"Also draw throughput and latency against concurrency (needs {INSTALL_HINT}).",
    )


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


def write_json(path: Path, results: Sequence[LevelResult], /, *, settings: dict[str, Any]) -> None:
    """The settings, one record per level (with error kinds) and the suggestions."""
    document = {
        "settings": dict(settings),
        "levels": [{**r.as_row(), "errors": dict(r.errors)} for r in results],
        "suggestions": suggestions(results),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def require_matplotlib() -> None:
    """Stop (exit 1) with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise Stop(f"--chart needs matplotlib: {INSTALL_HINT}", ExitCode.FAILED) from None


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
    from ..testing import DEFAULT_API_KEY, FakeServerThread, build_fake_server

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
                raise Stop("the fake server process did not start", ExitCode.FAILED)
            config = Config(api_key=DEFAULT_API_KEY, base_url=url, rate=rate)
            yield _Target(config, numbers, f"embedded fake server (process; {shape})")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck child
                process.kill()


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
    ids: IO[bytes], *, requests: int, account: AccountOptions, rate: float | None
) -> _Target:
    name = "<stdin>" if getattr(ids, "name", "-") in ("-", "<stdin>") else str(ids.name)
    numbers = _read_ids(ids, name, requests)
    config = client_config(
        api_key_file=account.api_key_file,
        base_url=account.base_url,
        unique_id=account.unique_id,
        rate=rate,
        missing_key=f"--ids benchmarks a real account and needs its key: set {ENV_API_KEY}"
        " or pass --api-key-file FILE",
    )
    rate_text = f", --rate {rate:g}/s" if rate is not None else ""
    return _Target(config, numbers, f"{config.base_url} ({len(numbers)} ids{rate_text})")


def _check_sources(ctx: click.Context, real: bool) -> None:
    """Refuse the fake server's options with ``--ids``, and the account's without."""
    given = [
        name
        for name in names(FakeTargetOptions if real else AccountOptions)
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


@command("bench", BenchOptions, epilog=exit_codes(EXIT_MEANINGS))
def bench(ctx: click.Context, options: BenchOptions) -> None:
    """Measure throughput and latency at several concurrency levels, to choose settings.

    Against the embedded fake server by default, or a real account with --ids FILE.
    Prints one row per level: transcripts per second, latency percentiles, errors,
    the share of rate-limited (0429) answers and retries; then a suggested
    --concurrency, and a --rate when the service rate-limited the requests.
    """
    try:
        levels = parse_levels(options.levels_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--concurrency'") from None
    real = options.ids is not None
    _check_sources(ctx, real)
    if options.chart_path is not None:
        require_matplotlib()
    kind = TranscriptKind(options.kind)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, highlight=False)

    if options.ids is not None:
        target = _real_target(
            options.ids, requests=options.requests, account=options.account, rate=options.rate
        )
        results = _run(target, levels, options.requests, kind, pause=LEVEL_PAUSE, console=err)
        settings: dict[str, Any] = {"target": "account", "base_url": target.config.base_url}
    else:
        pause = LEVEL_PAUSE if options.fake.qps is not None else 0.0
        with _fake_target(
            options.fake.fake_server(), server=options.fake.server, rate=options.rate
        ) as target:
            results = _run(target, levels, options.requests, kind, pause=pause, console=err)
        settings = {"target": "fake", **attrs.asdict(options.fake)}
    settings.update(
        {
            "levels": list(levels),
            "requests": options.requests,
            "kind": options.kind,
            "rate": options.rate,
        }
    )

    title = f"memories-async bench: {target.description}"
    out.print(results_table(results, title=title))
    for line in suggestions(results):
        out.print(f"• {line}")
    try:
        if options.csv_path is not None:
            write_csv(options.csv_path, results)
        if options.json_path is not None:
            write_json(options.json_path, results, settings=settings)
        if options.chart_path is not None:
            write_chart(options.chart_path, results, title=title)
    except OSError as exc:
        raise Stop(f"cannot write {exc.filename}: {exc.strerror}", ExitCode.FAILED) from None


def _run(
    target: _Target,
    levels: Sequence[int],
    requests: int,
    kind: TranscriptKind,
    /,
    *,
    pause: float,
    console: Console,
) -> list[LevelResult]:
    """Sweep ``target``; an account-wide error stops the command (exit 1, or 2 for the key)."""
    redact = Redactor()
    redact.add(target.config.api_key)
    try:
        return asyncio.run(
            sweep(
                target.config,
                target.numbers,
                levels,
                requests=requests,
                kind=kind,
                pause=pause,
                status=console.status,
            )
        )
    except AccountHaltedError as exc:
        raise Stop(redact(str(exc.cause)), exit_code_for(exc)) from None
