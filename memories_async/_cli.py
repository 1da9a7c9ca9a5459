"""The ``memories-async`` command line: ``export``, ``get`` and ``fake-server``.

Needs the ``cli`` extra (click and rich): ``pip install 'memories-async[cli]'``. Data goes to
stdout or ``--out``; progress, messages and errors go to stderr, one line per error, never a
traceback, and never the API key.

Exit codes
==========

====  ===========================================================================
0     everything asked for was exported (or printed)
1     some videos failed (listed in the failures file); an account-wide error other
      than a bad key stopped the export (out of credits, account disabled,
      permission denied); the output could not be written; the library listing failed
2     usage or configuration error: a bad option, no API key or a key the service
      rejects (code 0401), an unreadable ids file or a malformed line in it, an
      output that cannot be used (written by something else, locked by another export)
130   interrupted by Ctrl-C (SIGINT), SIGTERM or SIGHUP; what was exported is kept
====  ===========================================================================

A malformed line of an ``--ids`` file is a usage error rather than a failure of one video:
the file is not what the user thinks it is, and a regular file is checked whole before any
request, so the export stops at once with the line number. Standard input (``--ids -``) and
pipes cannot be read twice: their lines are checked as the export reads them, and a malformed
one stops the export there, keeping what was exported (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shlex
import signal
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import attrs
import click
from rich.console import Console

from ._bench import bench
from ._client import DEFAULT_CONCURRENCY, MemoriesClient
from ._config import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_RATE_STORE,
    ENV_UNIQUE_ID,
    MAX_API_KEY_LENGTH,
    Config,
    RetryPolicy,
)
from ._errors import (
    AccountError,
    AccountHaltedError,
    AuthenticationError,
    ConfigError,
    MemoriesError,
    RateStoreError,
)
from ._export import (
    ExportStats,
    FailureRecord,
    count_pending,
    describe_failure,
    error_message,
    export_kinds,
    export_to_sink,
    library_video_nos,
    summary_data,
)
from ._formats import ExportFormat
from ._ids import (
    IdInputError,
    IdItem,
    aiter_numbers,
    aiter_stream_ids,
    check_id_arguments,
    iter_id_lines,
)
from ._models import Transcript, TranscriptKind, VideoStatus
from ._progress import ConsoleLogHandler, ExportProgress, summary_table
from ._ratestore import open_rate_store
from ._redact import Redactor
from ._sinks import (
    COMMIT_EVERY,
    COMMIT_INTERVAL,
    FailureLog,
    OutputError,
    Sink,
    check_output,
    default_failures_path,
    open_sink,
    render,
    same_path,
)

if TYPE_CHECKING:
    from .testing import FakeServer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEMO_VIDEOS = 200
"""Videos in the fake library of ``--demo`` when no number is given."""
DEMO_SEED = 2025
MAX_FAILURE_NOTES = 20
"""Failures printed one by one on stderr; the rest are only counted (and in the file)."""

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_FORMATS = [fmt.value for fmt in ExportFormat]
_F = TypeVar("_F", bound=Callable[..., Any])


@attrs.frozen
class Invocation:
    """How the program was called, for the "resume with the same command" hint."""

    argv: tuple[str, ...]


class _Stop(Exception):
    """Ends a command with a one-line error message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- shared options --------------------------------------------------------------------------


def _service_options(function: _F) -> _F:
    """The options that say how to reach the service, shared by ``export`` and ``get``."""
    options = [
        click.option(
            "--base-url",
            metavar="URL",
            help=f"Service address (default: ${ENV_BASE_URL}, else https://api.memories.ai).",
        ),
        click.option(
            "--api-key-file",
            metavar="FILE",
            help=f"Read the API key from the first line of FILE instead of ${ENV_API_KEY}."
            " The key is never printed, logged or written.",
        ),
        click.option(
            "--unique-id",
            metavar="NAME",
            help=f"Namespace the videos were uploaded under (default: ${ENV_UNIQUE_ID}, else"
            " the service's 'default'). A wrong one gives empty transcripts, not errors.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Longest wait for one attempt of one request (default: 60).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            metavar="N",
            default=RetryPolicy().attempts - 1,
            show_default=True,
            help="Retries of a request that failed in a way that may pass (5xx, timeouts,"
            " resets, 'network abnormal'); rate-limit answers are waited out, not counted.",
        ),
        click.option(
            "--rate-store",
            metavar="URL",
            help="Where the pacing state lives: memory:// (default: this process only) or"
            " redis://[:PASSWORD@]HOST:PORT/DB, shared by every process and machine using it,"
            f" so that they stay under one account quota together (default: ${ENV_RATE_STORE}).",
        ),
        click.option(
            "--rate-name",
            metavar="NAME",
            help="The name of the quota in the rate store, for processes that use different"
            " keys of one account (default: a salted hash of the base URL and key).",
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            help="Log what the client does on stderr: -v for retries, -vv for every request.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _retry_policy(retries: int) -> RetryPolicy:
    """The retry policy for ``--retries N``: N retries after the first attempt."""
    attempts = retries + 1
    # No deadline: a rate-limited request waits for its slot however long the
    # quota makes it; the user can interrupt and resume.
    return RetryPolicy(
        attempts=attempts,
        transient_attempts=min(RetryPolicy().transient_attempts, attempts),
        total_timeout=None,
    )


def _load_api_key(api_key_file: str | None) -> str:
    """The API key from ``--api-key-file`` (first line, stripped) or the environment."""
    if api_key_file is not None:
        try:
            with open(api_key_file, encoding="utf-8") as file:
                # Never the whole of a big file: a key is one short line.
                key = file.readline(MAX_API_KEY_LENGTH + 2).strip()
                if len(key) > MAX_API_KEY_LENGTH:
                    raise _Stop(
                        f"--api-key-file {api_key_file} does not start with an API key (its"
                        f" first line is longer than {MAX_API_KEY_LENGTH:,} characters)",
                        EXIT_USAGE,
                    )
        except OSError as exc:
            raise _Stop(
                f"cannot read --api-key-file {api_key_file}: {exc.strerror}", EXIT_USAGE
            ) from None
        except UnicodeDecodeError:
            raise _Stop(f"--api-key-file {api_key_file} is not UTF-8 text", EXIT_USAGE) from None
        if not key:
            raise _Stop(
                f"--api-key-file {api_key_file} is empty: its first line must hold the key",
                EXIT_USAGE,
            )
        return key
    key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        raise _Stop(
            f"no API key: set {ENV_API_KEY} or pass --api-key-file FILE (or try --demo)",
            EXIT_USAGE,
        )
    return key


def _config(
    *,
    api_key: str,
    base_url: str | None,
    unique_id: str | None,
    timeout: float | None,
    retries: int,
    rate: float | None = None,
    rate_store: str | None = None,
    rate_name: str | None = None,
    demo: bool = False,
) -> Config:
    """The client settings; the environment is not read for a demo."""
    settings: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "unique_id": unique_id,
        "timeout": timeout,
        "retry": _retry_policy(retries),
        "rate": rate,
        "rate_store": rate_store,
        "rate_name": rate_name,
    }
    try:
        if demo:
            return Config(**{k: v for k, v in settings.items() if v is not None})
        return Config.from_env(**settings)
    except ConfigError as exc:
        raise _Stop(str(exc), EXIT_USAGE) from None


def _demo_server(videos: int) -> FakeServer:
    """The fake service of ``--demo``: a generated library, some latency and a few faults."""
    from .testing import FakeLibrary, FakeServer, FaultRule, Latency

    return FakeServer(
        FakeLibrary.generate(videos, seed=DEMO_SEED),
        latency=Latency.uniform(0.02, 0.2),
        faults=[FaultRule.random(0.04)],
        seed=DEMO_SEED,
    )


@contextlib.contextmanager
def _verbose_logging(verbosity: int, console: Console, redact: Redactor) -> Iterator[None]:
    """Send the ``memories_async`` logger to the console while the command runs."""
    if verbosity <= 0:
        yield
        return
    logger = logging.getLogger("memories_async")
    handler = ConsoleLogHandler(console, redact)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _echo_error(message: str, redact: Redactor) -> None:
    """Print one redacted ``error: ...`` line on stderr."""
    click.echo(f"error: {redact(message)}", err=True)


def _exit_code_for(error: BaseException) -> int:
    """Exit code of an error that stopped a command."""
    cause = error.cause if isinstance(error, AccountHaltedError) else error
    if isinstance(cause, AuthenticationError) or isinstance(
        error, IdInputError | OutputError | ConfigError
    ):
        return EXIT_USAGE
    return EXIT_FAILED


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals that stop a command cleanly: Ctrl-C, a kill, and a terminal that hangs up."""


def _run_interruptible(factory: Callable[[], Coroutine[Any, Any, None]]) -> int | None:
    """Run ``factory()`` in a new event loop; return the signal that interrupted it, if any.

    The first SIGINT, SIGTERM or SIGHUP cancels the coroutine, which cleans up (in-flight requests
    are dropped, everything committed stays); the handlers are then removed, so a second
    signal ends the process at once (which is safe: every write is crash-safe).
    """
    caught: list[int] = []

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[int] = []

        def on_signal(signum: int) -> None:
            if caught:  # pragma: no cover - handlers are removed at the first signal
                return
            caught.append(signum)
            for installed_signal in installed:
                loop.remove_signal_handler(installed_signal)
            installed.clear()
            task.cancel()

        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, on_signal, signum)
                    installed.append(signum)
        try:
            await factory()
        except asyncio.CancelledError:
            if not caught:
                raise
            task.uncancel()
        finally:
            for installed_signal in installed:
                loop.remove_signal_handler(installed_signal)

    try:
        asyncio.run(runner())
    except KeyboardInterrupt:
        caught.append(signal.SIGINT)
    return caught[0] if caught else None


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _binary_stdout() -> IO[bytes] | None:
    """The byte stream under stdout, where the data goes; ``None`` when stdout is closed."""
    return None if sys.stdout is None else sys.stdout.buffer


def _require_stdout() -> IO[bytes]:
    """:func:`_binary_stdout`, or stop (exit 2) when stdout is closed."""
    stdout = _binary_stdout()
    if stdout is None:
        raise _Stop("standard output is closed: nothing to print to", EXIT_USAGE)
    return stdout


# -- the group ---------------------------------------------------------------------------------


@click.group(context_settings=_CONTEXT)
@click.version_option(package_name="memories-async", prog_name="memories-async")
def cli() -> None:
    """Fetch and export memories.ai transcripts, concurrently and reliably.

    The API key comes from $MEMORIES_API_KEY (or --api-key-file). Try it without a key
    against a built-in fake service:

    \b
        memories-async export --demo 200 --format srt --out transcripts/

    Run 'memories-async COMMAND --help' for each command's options.
    """


# -- export ------------------------------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@click.argument("video_nos", nargs=-1, metavar="[VIDEO_NO]...")
@click.option(
    "--ids",
    "ids_file",
    metavar="FILE",
    help="Read video numbers from FILE, one per line ('-': stdin). Blank lines, '#' comments,"
    " CRLF, a BOM and surrounding spaces are fine; duplicates are dropped; only the first"
    " TAB-separated field counts, so a failures file can be passed back to retry it.",
)
@click.option(
    "--all",
    "all_videos",
    is_flag=True,
    help="Export every video of the library (enumerated with list_videos).",
)
@click.option(
    "--status",
    metavar="STATUS",
    help="With --all: the status to list (default PARSE, the videos whose transcripts are"
    " ready; 'any' lists every status).",
)
@click.option(
    "--kind",
    type=click.Choice(["visual", "audio", "both"]),
    default="visual",
    show_default=True,
    help="Visual transcription (scene captions), audio (speech), or both.",
)
@click.option(
    "--format",
    "fmt_name",
    metavar="FORMAT",
    type=click.Choice(_FORMATS),
    default=ExportFormat.JSONL.value,
    show_default=True,
    help="jsonl: one JSON record per transcript; csv: one row per segment; srt, vtt, txt:"
    " one file per video and kind, named <video_no>.<kind>.<ext>.",
)
@click.option(
    "-o",
    "--out",
    metavar="PATH",
    help="jsonl/csv: the output FILE (default '-', stdout; stdout runs cannot resume)."
    " srt/vtt/txt: the output DIR (required). Rerunning with the same --out resumes.",
)
@click.option(
    "--failures",
    "failures_path",
    metavar="FILE",
    help="Where to append failed videos (default: OUT.failures.tsv, or DIR/failures.tsv;"
    " none for stdout unless given).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Requests in flight at once (shared by both kinds with --kind both).",
)
@click.option(
    "--commit-interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=COMMIT_INTERVAL,
    show_default=True,
    help="Transcripts are made durable in groups, at least this often (and every"
    f" {COMMIT_EVERY}): a crash or power loss costs at most this much fetching, done again"
    " by the next run.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="QPS",
    help="Requests per second, at most. The API allows 1 to 5 per account for transcripts"
    " (5 in the v1.2 docs, 1 in the newest) and 5 for list_videos. Without --rate the"
    " client slows down by itself on rate-limit answers; setting your account's limit"
    " avoids them.",
)
@_service_options
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary; errors only.")
@click.option(
    "--json-summary",
    is_flag=True,
    help="Print a JSON summary on stdout at the end (needs --out: stdout must not carry data).",
)
@click.option(
    "--demo",
    type=click.IntRange(min=1, max=100_000),
    is_flag=False,
    flag_value=DEMO_VIDEOS,
    default=None,
    metavar="[N]",
    help=f"Export from a built-in fake service with N generated videos (default"
    f" {DEMO_VIDEOS}), with some latency and faults; no key needed. Without ids, --all.",
)
@click.pass_context
def export(
    ctx: click.Context,
    /,
    *,
    video_nos: tuple[str, ...],
    ids_file: str | None,
    all_videos: bool,
    status: str | None,
    kind: str,
    fmt_name: str,
    out: str | None,
    failures_path: str | None,
    concurrency: int,
    commit_interval: float,
    rate: float | None,
    base_url: str | None,
    api_key_file: str | None,
    unique_id: str | None,
    timeout: float | None,
    retries: int,
    rate_store: str | None,
    rate_name: str | None,
    verbose: int,
    quiet: bool,
    json_summary: bool,
    demo: int | None,
) -> None:
    """Export the transcripts of many videos; resumable, crash-safe, with progress.

    Videos come from VIDEO_NO arguments, from --ids FILE, or from --all. Each video is
    fetched in the --kind(s) asked for and written in --format to --out.

    \b
    Resuming: rerun the same command. jsonl/csv files keep a ledger (OUT.ledger) of the
    transcripts committed; srt/vtt/txt files appear only once committed. Transcripts are
    committed in groups (see --commit-interval). A run killed at any moment (even with
    SIGKILL, or by a power loss) loses nothing committed, and the next run drops any
    uncommitted record, fetches it again and skips what is done. Output to stdout cannot
    resume.

    \b
    Failures are appended to a failures file (OUT.failures.tsv by default), one
    'video_no<TAB>kind<TAB>code<TAB>attempts<TAB>message' line each: retry exactly those
    (video, kind) pairs with 'export --ids OUT.failures.tsv --out OUT' (an ids line whose
    second field is a kind means that pair, whatever --kind says).

    \b
    Exit codes: 0 all exported; 1 some failed, or an account error (credits...) or a
    write error stopped the export; 2 usage or configuration error (bad option, no or
    invalid key, unreadable ids file, malformed ids line, unusable output); 130
    interrupted (Ctrl-C, SIGTERM or SIGHUP; rerun the same command to resume).

    \b
    Examples:
      memories-async export --demo 200 --format srt --out transcripts/
      memories-async export --all --kind both --out library.jsonl --rate 1
      memories-async export --ids ids.txt --format csv --out segments.csv
      memories-async export --ids library.jsonl.failures.tsv --out library.jsonl
    """
    fmt = ExportFormat(fmt_name)
    kinds = export_kinds(kind)
    to_stdout = out is None or out == "-"
    sources = sum((bool(video_nos), ids_file is not None, all_videos))
    if sources > 1:
        raise click.UsageError("give video numbers, --ids FILE or --all, not several")
    if sources == 0:
        if demo is None:
            raise click.UsageError(
                "nothing to export: give video numbers, --ids FILE or --all (or try --demo)"
            )
        all_videos = True
    if status is not None and not all_videos:
        raise click.UsageError("--status only applies with --all")
    if fmt.per_video and to_stdout:
        raise click.UsageError(
            f"--format {fmt.value} writes one file per video and kind: pass --out DIR"
        )
    if json_summary and to_stdout:
        raise click.UsageError(
            "--json-summary prints on stdout, which carries the data: pass --out FILE too"
        )
    if demo is not None and (base_url or api_key_file):
        raise click.UsageError("--demo runs its own fake service: drop --base-url/--api-key-file")
    listed_status: str | None = VideoStatus.PARSE.value
    if status is not None:
        listed_status = None if status.strip().lower() == "any" else status.strip()
        if listed_status == "":
            raise click.UsageError("--status must not be empty (use 'any' for every status)")
    invocation = ctx.find_object(Invocation)
    job = _ExportJob(
        video_nos=video_nos,
        ids_file=ids_file,
        all_videos=all_videos,
        status=listed_status,
        kinds=kinds,
        fmt=fmt,
        out=None if to_stdout else out,
        failures_path=failures_path,
        concurrency=concurrency,
        commit_interval=commit_interval,
        rate=rate,
        base_url=base_url,
        api_key_file=api_key_file,
        unique_id=unique_id,
        timeout=timeout,
        retries=retries,
        rate_store=rate_store,
        rate_name=rate_name,
        verbose=verbose,
        quiet=quiet,
        json_summary=json_summary,
        demo=demo,
        argv=None if invocation is None else invocation.argv,
    )
    ctx.exit(job.run())


class _IdFileItems:
    """The items of a regular id file, read from its start each time it is iterated."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name

    def __iter__(self) -> Iterator[IdItem]:
        self.stream.seek(0)
        for _line, item in iter_id_lines(self.stream, self.name):
            yield item


@attrs.define
class _ExportJob:
    """One ``export`` command, from its checked options to its exit code."""

    video_nos: tuple[str, ...]
    ids_file: str | None
    all_videos: bool
    status: str | None
    kinds: tuple[TranscriptKind, ...]
    fmt: ExportFormat
    out: str | None
    failures_path: str | None
    concurrency: int
    commit_interval: float
    rate: float | None
    base_url: str | None
    api_key_file: str | None
    unique_id: str | None
    timeout: float | None
    retries: int
    rate_store: str | None
    rate_name: str | None
    verbose: int
    quiet: bool
    json_summary: bool
    demo: int | None
    argv: tuple[str, ...] | None
    redact: Redactor = attrs.field(factory=Redactor)
    stats: ExportStats = attrs.field(factory=ExportStats)
    _failure_notes: int = 0

    def run(self) -> int:
        """Run the export and report; return the exit code."""
        console = Console(stderr=True, highlight=False)
        try:
            with _verbose_logging(self.verbose, console, self.redact):
                return self._run(console)
        except _Stop as stop:
            _echo_error(stop.message, self.redact)
            return stop.code
        except (IdInputError, OutputError) as exc:
            _echo_error(str(exc), self.redact)
            return EXIT_USAGE
        except KeyboardInterrupt:
            click.echo("interrupted before any request was made", err=True)
            return EXIT_INTERRUPTED

    def _run(self, console: Console) -> int:
        """Check the input, open the output, run the export and report; return the code."""
        numbers = check_id_arguments(self.video_nos)
        config = None
        if self.demo is None:
            config = _config(
                api_key=_load_api_key(self.api_key_file),
                base_url=self.base_url,
                unique_id=self.unique_id,
                timeout=self.timeout,
                retries=self.retries,
                rate=self.rate,
                rate_store=self.rate_store,
                rate_name=self.rate_name,
            )
            self.redact.add(config.api_key)
            # Before the output is touched: an unreachable store creates nothing.
            asyncio.run(_check_rate_store_url(config.rate_store))
        failures_path = self.failures_path or default_failures_path(self.fmt, self.out)
        check_output(self.fmt, self.out, failures_path)
        with contextlib.ExitStack() as stack:
            # The ids are checked before the output is touched: a bad file creates nothing.
            countable, source = self._source(stack, numbers)
            sink = stack.enter_context(open_sink(self.fmt, self.out, stdout=_binary_stdout()))
            if countable is not None:
                self.stats.total = count_pending(countable, self.kinds, sink)[0]
            failures = None
            if failures_path is not None:
                failures = FailureLog(failures_path, redact=self.redact)
                stack.callback(failures.close)
            display = ExportProgress(console, live=console.is_terminal, quiet=self.quiet)
            self._note_resume(display, sink)
            error: BaseException | None = None
            with display:

                async def main() -> None:
                    await self._export(config, source, sink, failures, display)

                try:
                    signum = _run_interruptible(main)
                except (MemoriesError, IdInputError, OSError) as exc:
                    signum, error = None, exc
            return self._report(console, sink, failures_path, signum, error)

    def _source(
        self, stack: contextlib.ExitStack, numbers: list[str]
    ) -> tuple[Iterable[IdItem] | None, Callable[[MemoriesClient], AsyncIterator[IdItem]]]:
        """Prepare the ids; return them when they can be counted before the run.

        A regular ids file is read whole once here, so that a malformed line stops the
        export before any request; it is read again, as a stream, to count the total for
        the progress display, and once more by the export.
        """
        if numbers:
            return dict.fromkeys(numbers).keys(), lambda _client: aiter_numbers(numbers)
        if self.ids_file == "-":
            if sys.stdin is None:
                raise _Stop("--ids -: standard input is closed", EXIT_USAGE)
            stdin = sys.stdin.buffer
            return None, lambda _client: aiter_stream_ids(stdin, "<stdin>")
        if self.ids_file is not None:
            path = self.ids_file
            items = None
            try:
                if self.out is not None and same_path(path, self.out):
                    raise _Stop(f"--ids and --out both name {path}", EXIT_USAGE)
                regular = stat.S_ISREG(os.stat(path).st_mode)
                stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115
                if regular:
                    # Read whole once here, to stop at a malformed line before any request;
                    # read again to count what is left beside the sink, then to export.
                    items = _IdFileItems(stream, path)
                    for _item in items:
                        pass
            except OSError as exc:
                raise _Stop(f"cannot read --ids {path}: {exc.strerror}", EXIT_USAGE) from None
            if items is not None:
                file_items = items
                return file_items, lambda _client: aiter_numbers(iter(file_items))
            return None, lambda _client: aiter_stream_ids(stream, path)
        status, unique_id = self.status, self.unique_id
        return None, lambda client: library_video_nos(client, status=status, unique_id=unique_id)

    def _note_resume(self, display: ExportProgress, sink: Sink) -> None:
        """Say that the output holds transcripts already, and what was repaired."""
        if not sink.resumable or not sink.done_count:
            return
        details = []
        if sink.adopted_records:
            details.append(
                f"recorded {sink.adopted_records} whole transcripts written after the last commit"
            )
        if sink.recovered_bytes:
            what = "an unfinished record" if sink.format is ExportFormat.JSONL else "rows"
            details.append(
                f"dropped {sink.recovered_bytes} bytes of {what} written after the last commit"
            )
        if sink.removed_temp_files:
            details.append(f"removed {sink.removed_temp_files} unfinished files")
        extra = f" ({'; '.join(details)})" if details else ""
        display.note(
            f"resuming: {sink.target} holds {sink.done_count} transcripts, which are skipped{extra}"
        )

    async def _export(
        self,
        config: Config | None,
        source: Callable[[MemoriesClient], AsyncIterator[IdItem]],
        sink: Sink,
        failures: FailureLog | None,
        display: ExportProgress,
    ) -> None:
        """Start the demo service if asked, then the client, and export."""
        async with contextlib.AsyncExitStack() as stack:
            if config is None:
                assert self.demo is not None
                server = await stack.enter_async_context(_demo_server(self.demo))
                config = _config(
                    api_key=server.api_key,
                    base_url=server.url,
                    unique_id=self.unique_id,
                    timeout=self.timeout,
                    retries=self.retries,
                    rate=self.rate,
                    rate_store=self.rate_store,
                    rate_name=self.rate_name,
                    demo=True,
                )
                self.redact.add(config.api_key)
                display.note(f"demo: a fake service with {self.demo} videos at {server.url}")
            client = await stack.enter_async_context(MemoriesClient(config=config))
            await _check_rate_store(client)
            await export_to_sink(
                client,
                source(client),
                sink,
                kinds=self.kinds,
                max_concurrency=self.concurrency,
                commit_interval=self.commit_interval,
                stats=self.stats,
                failures=failures,
                on_progress=display.update,
                on_failure=lambda record: self._note_failure(display, record, failures),
            )

    def _note_failure(
        self, display: ExportProgress, record: FailureRecord, failures: FailureLog | None
    ) -> None:
        """Print the first failures one per line; only count the rest."""
        self._failure_notes += 1
        if self._failure_notes <= MAX_FAILURE_NOTES:
            display.note(self.redact(f"failed: {describe_failure(record)}"))
        elif self._failure_notes == MAX_FAILURE_NOTES + 1:
            where = f" (all are in {failures.path})" if failures is not None else ""
            display.note(f"further failures are counted, not printed{where}")

    def _report(
        self,
        console: Console,
        sink: Sink,
        failures_path: str | None,
        signum: int | None,
        error: BaseException | None,
    ) -> int:
        """Print the summary, the error and the resume hint; return the exit code."""
        stats = self.stats
        if signum is not None:
            status, code = "interrupted", EXIT_INTERRUPTED
        elif error is not None:
            halted = isinstance(error, AccountHaltedError | AccountError)
            status, code = ("halted" if halted else "error"), _exit_code_for(error)
        elif stats.failed:
            status, code = "completed_with_failures", EXIT_FAILED
        else:
            status, code = "completed", EXIT_OK
        message = None if error is None else self.redact(error_message(error))
        summary = summary_data(
            stats,
            status=status,
            exit_code=code,
            output=sink.target if self.out is not None else "-",
            fmt=self.fmt.value,
            kinds=self.kinds,
            failures_file=failures_path,
            error=message,
        )
        if not self.quiet:
            console.print(summary_table(summary))
        if isinstance(error, BrokenPipeError):
            _silence_stdout()
            message = "stdout was closed before the export ended (broken pipe)"
        if message is not None:
            prefix = ""
            if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
                prefix = "cannot write the output: "
            _echo_error(f"{prefix}{message}", self.redact)
        if signum is not None or error is not None:
            click.echo(self.redact(self._resume_hint(sink, signum is not None)), err=True)
        if self.json_summary:
            click.echo(json.dumps(summary))
        return code

    def _resume_hint(self, sink: Sink, interrupted: bool) -> str:
        """The lines that tell how to resume after a stop."""
        what = "interrupted" if interrupted else "stopped"
        if not sink.resumable:
            return (
                f"{what}: the output went to stdout, which cannot resume;"
                " pass --out FILE to make an export resumable"
            )
        command = "the same command"
        if self.argv is not None:
            command = shlex.join(["memories-async", *self.argv])
        stdin = " (with the same input on stdin)" if self.ids_file == "-" else ""
        return (
            f"{what}: every transcript written so far is safe in {sink.target};"
            f" resume with{stdin}:\n  {command}"
        )


# -- get ---------------------------------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@click.argument("video_no", required=False)
@click.option(
    "--kind",
    type=click.Choice(["visual", "audio"]),
    default="visual",
    show_default=True,
    help="Visual transcription (scene captions) or audio (speech).",
)
@click.option(
    "--format",
    "fmt_name",
    metavar="FORMAT",
    type=click.Choice(_FORMATS),
    default=ExportFormat.JSONL.value,
    show_default=True,
    help="How to print the transcript (csv includes its header).",
)
@_service_options
@click.option(
    "--demo",
    is_flag=True,
    help="Read from a built-in fake service; without VIDEO_NO, its first ready video.",
)
@click.pass_context
def get(
    ctx: click.Context,
    /,
    *,
    video_no: str | None,
    kind: str,
    fmt_name: str,
    base_url: str | None,
    api_key_file: str | None,
    unique_id: str | None,
    timeout: float | None,
    retries: int,
    rate_store: str | None,
    rate_name: str | None,
    verbose: int,
    demo: bool,
) -> None:
    """Print one video's transcript on stdout.

    \b
    Exit codes: 0 printed (possibly empty: no speech, not processed, other
    namespace); 1 the request failed; 2 usage or configuration error (including a
    key the service rejects); 130 interrupted.
    """
    if video_no is None and not demo:
        raise click.UsageError("missing VIDEO_NO (or pass --demo)")
    if demo and (base_url or api_key_file):
        raise click.UsageError("--demo runs its own fake service: drop --base-url/--api-key-file")
    fmt = ExportFormat(fmt_name)
    redact = Redactor()
    console = Console(stderr=True, highlight=False)
    output: list[bytes] = []

    async def main() -> None:
        transcript = await _fetch_one(
            video_no,
            kind=TranscriptKind(kind),
            demo=demo,
            redact=redact,
            base_url=base_url,
            settings={
                "unique_id": unique_id,
                "timeout": timeout,
                "retries": retries,
                "rate_store": rate_store,
                "rate_name": rate_name,
            },
            api_key_file=api_key_file,
        )
        try:
            output.append(render(transcript, fmt, header=True))
        except (ValueError, TypeError) as exc:
            raise _Stop(
                f"cannot render the transcript as {fmt.value}: {exc}", EXIT_FAILED
            ) from None

    code = EXIT_OK
    with _verbose_logging(verbose, console, redact):
        try:
            if video_no is not None:
                check_id_arguments([video_no])
            _require_stdout()  # before anything is fetched
            if _run_interruptible(main) is not None:
                click.echo("interrupted", err=True)
                code = EXIT_INTERRUPTED
            elif output:
                stdout = _require_stdout()
                stdout.write(output[0])
                stdout.flush()
        except _Stop as stop:
            _echo_error(stop.message, redact)
            code = stop.code
        except (MemoriesError, IdInputError) as exc:
            _echo_error(error_message(exc), redact)
            code = _exit_code_for(exc)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                _silence_stdout()
            _echo_error(f"cannot write the output: {exc.strerror or exc}", redact)
            code = EXIT_FAILED
    ctx.exit(code)


async def _fetch_one(
    video_no: str | None,
    /,
    *,
    kind: TranscriptKind,
    demo: bool,
    redact: Redactor,
    base_url: str | None,
    settings: dict[str, Any],
    api_key_file: str | None,
) -> Transcript:
    """Fetch one transcript for ``get``, from the service or from a demo fake."""
    async with contextlib.AsyncExitStack() as stack:
        number = video_no
        if demo:
            server = await stack.enter_async_context(_demo_server(DEMO_VIDEOS))
            server.faults = ()
            config = _config(api_key=server.api_key, base_url=server.url, demo=True, **settings)
            if number is None:
                number = server.library.videos(status=VideoStatus.PARSE.value)[0].video_no
        else:
            config = _config(api_key=_load_api_key(api_key_file), base_url=base_url, **settings)
        redact.add(config.api_key)
        client = await stack.enter_async_context(MemoriesClient(config=config))
        await _check_rate_store(client)
        assert number is not None
        return await client.get_transcription(number, kind=kind)


async def _check_rate_store(client: MemoriesClient) -> None:
    """Stop with exit 2 and one line when the shared rate store does not answer."""
    try:
        await client.governor.check()
    except RateStoreError as exc:
        raise _Stop(f"{exc} (check --rate-store / ${ENV_RATE_STORE})", EXIT_USAGE) from None


async def _check_rate_store_url(url: str | None) -> None:
    """:func:`_check_rate_store` for a store URL, before any client exists."""
    store = open_rate_store(url)
    if store is None:
        return
    try:
        await store.check()
    except RateStoreError as exc:
        raise _Stop(f"{exc} (check --rate-store / ${ENV_RATE_STORE})", EXIT_USAGE) from None
    finally:
        await store.aclose()


# -- fake-server ------------------------------------------------------------------------------


FAKE_SERVER_PROG = "memories-async fake-server"
FAKE_SERVER_PORT = 8080
"""The default port of ``memories-async fake-server`` (``python -m memories_async.testing``: 0)."""


@cli.command(
    "fake-server",
    context_settings={
        **_CONTEXT,
        "help_option_names": [],
        "ignore_unknown_options": True,
        "allow_extra_args": True,
    },
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED, metavar="[OPTIONS]")
@click.pass_context
def fake_server(ctx: click.Context, /, arguments: tuple[str, ...]) -> None:
    """Serve a fake memories.ai API until Ctrl-C, for trying the client and for tests.

    Prints the base URL on stdout once listening, and the accepted key on stderr. Point
    the client at it with MEMORIES_BASE_URL and MEMORIES_API_KEY, or --base-url.

    \b
    The options are those of 'python -m memories_async.testing' (one parser serves
    both), listed by 'memories-async fake-server --help'; --port is 8080 by default.
    Exit codes: 0 stopped by Ctrl-C or SIGTERM; 1 cannot listen; 2 bad option.
    """
    from .testing._command import main as serve

    ctx.exit(serve(arguments, prog=FAKE_SERVER_PROG, defaults={"port": FAKE_SERVER_PORT}))


cli.add_command(bench)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    # The command owns its process: long transcripts allocate hundreds of
    # small objects per answer, and the default young-generation threshold
    # (700) made the collector a quarter of the CPU of a bulk export.
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, old)
    args = list(sys.argv[1:] if argv is None else argv)
    cli.main(args=args, prog_name="memories-async", obj=Invocation(tuple(args)))


if __name__ == "__main__":
    main()
