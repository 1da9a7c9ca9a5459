"""``memories-async export``: the transcripts of many videos, resumable, crash-safe, with progress.

A malformed line of an ``--ids`` file is a usage error rather than a failure of one video:
the file is not what the user thinks it is, and a regular file is checked whole before any
request, so the export stops at once with the line number. Standard input (``--ids -``) and
pipes cannot be read twice: their lines are checked as the export reads them, and a malformed
one stops the export there, keeping what was exported (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import IO

import attrs
import click
from rich.console import Console

from .._client import DEFAULT_CONCURRENCY, MemoriesClient
from .._config import Config
from .._errors import AccountError, AccountHaltedError, MemoriesError
from .._export import (
    ExportStats,
    FailureRecord,
    HeldBack,
    count_pending,
    describe_failure,
    error_message,
    export_kinds,
    export_to_sink,
    library_video_nos,
    passed_over_count,
    summary_data,
)
from .._formats import ExportFormat
from .._ids import (
    IdInputError,
    IdItem,
    aiter_numbers,
    aiter_stream_ids,
    check_id_arguments,
    iter_id_lines,
)
from .._models import TranscriptKind, VideoStatus
from .._redact import Redactor
from .._sinks import (
    COMMIT_EVERY,
    COMMIT_INTERVAL,
    FailureLog,
    OutputError,
    Sink,
    check_output,
    default_failures_path,
    open_sink,
    same_path,
)
from .._wait import DEFAULT_POLL
from .common import (
    DEMO_ARRIVALS,
    DEMO_PROCESSING,
    DEMO_VIDEOS,
    Invocation,
    ServiceOptions,
    Stop,
    binary_stdout,
    check_rate_store,
    check_rate_store_url,
    demo_server,
    echo_error,
    exit_code_for,
    run_interruptible,
    silence_stdout,
    verbose_logging,
)
from .exits import ExitCode, exit_codes
from .options import argument, command, flag, group, option
from .progress import ExportProgress, summary_table

FOLLOW_INTERVAL = 60.0
"""Seconds between two listings of ``--follow`` unless ``--interval`` says otherwise."""
MAX_FAILURE_NOTES = 20
"""Failures printed one by one on stderr; the rest are only counted (and in the file)."""
FORMATS = [fmt.value for fmt in ExportFormat]


@attrs.frozen(kw_only=True)
class ExportOptions:
    """The options of ``export``, as given (checked by :meth:`check`)."""

    video_nos: tuple[str, ...] = argument(default=(), nargs=-1, metavar="[VIDEO_NO]...")
    ids_file: str | None = option(
        "--ids",
        metavar="FILE",
        help="Read video numbers from FILE, one per line ('-': stdin). Blank lines, '#' comments,"
        " CRLF, a BOM and surrounding spaces are fine; duplicates are dropped; only the first"
        " TAB-separated field counts, so a failures file can be passed back to retry it.",
    )
    all_videos: bool = flag(
        "--all", help="Export every video of the library (enumerated with list_videos)."
    )
    status: str | None = option(
        "--status",
        metavar="STATUS",
        help="With --all: the status to list (default PARSE, the videos whose transcripts are"
        " ready, or with --wait 'any'; 'any' lists every status).",
    )
    follow: bool = flag(
        "--follow",
        help="With --all: keep the export current. List the library every --interval seconds"
        " and export what is new, until interrupted (Ctrl-C or SIGTERM: exit 130, and a rerun"
        " resumes). A video still processing is exported once listed as PARSE; a transcript"
        " that keeps failing is tried again at ever fewer listings (up to every 64th).",
    )
    interval: float | None = option(
        "--interval",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        default=None,
        help=f"With --follow: seconds between two listings of the library (default"
        f" {FOLLOW_INTERVAL:g}).",
    )
    wait: bool = flag(
        "--wait",
        help="Wait for videos still being processed: the ready ones are exported at once, the"
        " others as each finishes (failed processing goes to the failures file as"
        " 'processing_failed'). Without --wait they are failures ('not_ready') that a rerun"
        " fetches again.",
    )
    wait_timeout: float | None = option(
        "--wait-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="With --wait: give up on a video still not ready after this long ('wait_timeout'"
        " in the failures file). Default: no limit.",
    )
    poll: float = option(
        "--poll",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        default=DEFAULT_POLL,
        show_default=True,
        help="With --wait: how often the videos waited for are checked (together, one"
        " list_videos request per 200; at most a quarter of the pacing).",
    )
    kind: str = option(
        "--kind",
        type=click.Choice(["visual", "audio", "both"]),
        default="visual",
        show_default=True,
        help="Visual transcription (scene captions), audio (speech), or both.",
    )
    format: str = option(
        "--format",
        metavar="FORMAT",
        type=click.Choice(FORMATS),
        default=ExportFormat.JSONL.value,
        show_default=True,
        help="jsonl: one JSON record per transcript; csv: one row per segment; srt, vtt, txt:"
        " one file per video and kind, named <video_no>.<kind>.<ext>.",
    )
    out: str | None = option(
        "-o",
        "--out",
        metavar="PATH",
        help="jsonl/csv: the output FILE (default '-', stdout; stdout runs cannot resume)."
        " srt/vtt/txt: the output DIR (required). Rerunning with the same --out resumes.",
    )
    failures_path: str | None = option(
        "--failures",
        metavar="FILE",
        help="Where to append failed videos (default: OUT.failures.tsv, or DIR/failures.tsv;"
        " none for stdout unless given).",
    )
    concurrency: int = option(
        "--concurrency",
        type=click.IntRange(min=1),
        metavar="N",
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Requests in flight at once (shared by both kinds with --kind both).",
    )
    commit_interval: float = option(
        "--commit-interval",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        default=COMMIT_INTERVAL,
        show_default=True,
        help="Transcripts are made durable in groups, at least this often (and every"
        f" {COMMIT_EVERY}): a crash or power loss costs at most this much fetching, done again"
        " by the next run.",
    )
    rate: float | None = option(
        "--rate",
        type=click.FloatRange(min=0, min_open=True),
        metavar="QPS",
        help="Requests per second, at most. The API allows 1 to 5 per account for transcripts"
        " (5 in the v1.2 docs, 1 in the newest) and 5 for list_videos. Without --rate the"
        " client slows down by itself on rate-limit answers; setting your account's limit"
        " avoids them.",
    )
    service: ServiceOptions = group(ServiceOptions)
    quiet: bool = flag("-q", "--quiet", help="No progress and no summary; errors only.")
    json_summary: bool = flag(
        "--json-summary",
        help="Print a JSON summary on stdout at the end (needs --out: stdout must not carry data).",
    )
    demo: int | None = option(
        "--demo",
        type=click.IntRange(min=1, max=100_000),
        is_flag=False,
        flag_value=DEMO_VIDEOS,
        metavar="[N]",
        help=f"Export from a built-in fake service with N generated videos (default"
        f" {DEMO_VIDEOS}), with some latency and faults; no key needed. Without ids, --all."
        f" With --wait or --follow its videos still processing finish over"
        f" {DEMO_PROCESSING:g}s, and with --follow a new video is uploaded every"
        f" {DEMO_ARRIVALS:g}s.",
    )

    @property
    def to_stdout(self) -> bool:
        """Whether the data goes to stdout."""
        return self.out is None or self.out == "-"

    def check(self) -> ExportOptions:
        """The options, ``--all`` implied by a bare ``--demo``; or :class:`click.UsageError`."""
        sources = sum((bool(self.video_nos), self.ids_file is not None, self.all_videos))
        if sources > 1:
            raise click.UsageError("give video numbers, --ids FILE or --all, not several")
        checked = self
        if sources == 0:
            if self.demo is None:
                raise click.UsageError(
                    "nothing to export: give video numbers, --ids FILE or --all (or try --demo)"
                )
            checked = attrs.evolve(self, all_videos=True)
        if self.status is not None and not checked.all_videos:
            raise click.UsageError("--status only applies with --all")
        fmt = ExportFormat(self.format)
        if fmt.per_video and self.to_stdout:
            raise click.UsageError(
                f"--format {fmt.value} writes one file per video and kind: pass --out DIR"
            )
        if self.json_summary and self.to_stdout:
            raise click.UsageError(
                "--json-summary prints on stdout, which carries the data: pass --out FILE too"
            )
        if self.demo is not None and (
            self.service.account.base_url or self.service.account.api_key_file
        ):
            raise click.UsageError(
                "--demo runs its own fake service: drop --base-url/--api-key-file"
            )
        if self.status is not None and self.status.strip() == "":
            raise click.UsageError("--status must not be empty (use 'any' for every status)")
        checked.check_waiting()
        return checked

    def check_waiting(self) -> None:
        """Raise :class:`click.UsageError` for ``--wait`` and ``--follow`` options that do
        not go together (on checked options: ``--all`` implied by ``--demo`` is set)."""
        if self.wait_timeout is not None and not self.wait:
            raise click.UsageError("--wait-timeout only applies with --wait")
        if self.interval is not None and not self.follow:
            raise click.UsageError("--interval only applies with --follow")
        if not self.follow:
            return
        if not self.all_videos:
            raise click.UsageError("--follow needs --all: it follows the whole library")
        if self.wait:
            raise click.UsageError(
                "give --follow or --wait, not both: --follow exports each video once a"
                " listing shows it processed"
            )
        if self.to_stdout:
            raise click.UsageError("--follow runs until stopped: pass --out to resume it")


EXIT_MEANINGS = {
    ExitCode.OK: "all exported",
    ExitCode.FAILED: "some failed, or an account error (credits...) or a write error stopped"
    " the export",
    ExitCode.USAGE: "usage or configuration error (bad option, no or invalid key, unreadable"
    " ids file, malformed ids line, unusable output)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM or SIGHUP; rerun the same command to"
    " resume)",
}


@command("export", ExportOptions, epilog=exit_codes(EXIT_MEANINGS))
def export(ctx: click.Context, options: ExportOptions) -> None:
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
    Examples:
      memories-async export --demo 200 --format srt --out transcripts/
      memories-async export --all --kind both --out library.jsonl --rate 1
      memories-async export --ids ids.txt --format csv --out segments.csv
      memories-async export --ids library.jsonl.failures.tsv --out library.jsonl
      memories-async export --ids uploaded.txt --wait --wait-timeout 3600 --out new.jsonl
      memories-async export --all --follow --interval 300 --out library.jsonl
    """
    invocation = ctx.find_object(Invocation)
    job = _ExportJob(options.check(), argv=None if invocation is None else invocation.argv)
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

    options: ExportOptions
    argv: tuple[str, ...] | None
    redact: Redactor = attrs.field(factory=Redactor)
    stats: ExportStats = attrs.field(factory=ExportStats)
    statuses: dict[str, str] | None = None
    """The statuses a library listing gave (``--all``): then none is looked up."""
    _failure_notes: int = 0

    @property
    def fmt(self) -> ExportFormat:
        """The output format."""
        return ExportFormat(self.options.format)

    @property
    def kinds(self) -> tuple[TranscriptKind, ...]:
        """The kinds of transcript exported."""
        return export_kinds(self.options.kind)

    @property
    def out(self) -> str | None:
        """The output path; ``None`` for stdout."""
        return None if self.options.to_stdout else self.options.out

    @property
    def status(self) -> str | None:
        """The status ``--all`` lists (``None``: every status)."""
        if self.options.status is None:
            return None if self.options.wait else VideoStatus.PARSE.value
        status = self.options.status.strip()
        return None if status.lower() == "any" else status

    def run(self) -> ExitCode:
        """Run the export and report; return the exit code."""
        console = Console(stderr=True, highlight=False)
        try:
            with verbose_logging(self.options.service.verbose, console, self.redact):
                return self._run(console)
        except Stop as stop:
            echo_error(stop.message, self.redact)
            return stop.code
        except (IdInputError, OutputError) as exc:
            echo_error(str(exc), self.redact)
            return ExitCode.USAGE
        except KeyboardInterrupt:
            click.echo("interrupted before any request was made", err=True)
            return ExitCode.INTERRUPTED

    def _run(self, console: Console) -> ExitCode:
        """Check the input, open the output, run the export and report; return the code."""
        numbers = check_id_arguments(self.options.video_nos)
        config = None
        if self.options.demo is None:
            config = self.options.service.config(rate=self.options.rate)
            self.redact.add(config.api_key)
            # Before the output is touched: an unreachable store creates nothing.
            asyncio.run(check_rate_store_url(config.rate_store))
        failures_path = self.options.failures_path or default_failures_path(self.fmt, self.out)
        check_output(self.fmt, self.out, failures_path)
        with contextlib.ExitStack() as stack:
            # The ids are checked before the output is touched: a bad file creates nothing.
            countable, source = self._source(stack, numbers)
            sink = stack.enter_context(open_sink(self.fmt, self.out, stdout=binary_stdout()))
            if countable is not None:
                self.stats.total = count_pending(countable, self.kinds, sink)[0]
            failures = None
            if failures_path is not None:
                failures = FailureLog(failures_path, redact=self.redact)
                stack.callback(failures.close)
            display = ExportProgress(console, live=console.is_terminal, quiet=self.options.quiet)
            self._note_resume(display, sink)
            error: BaseException | None = None
            with display:

                async def main() -> None:
                    await self._export(config, source, sink, failures, display)

                try:
                    signum = run_interruptible(main)
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
        if self.options.ids_file == "-":
            if sys.stdin is None:
                raise Stop("--ids -: standard input is closed", ExitCode.USAGE)
            stdin = sys.stdin.buffer
            return None, lambda _client: aiter_stream_ids(stdin, "<stdin>")
        if self.options.ids_file is not None:
            path = self.options.ids_file
            items = None
            try:
                if self.out is not None and same_path(path, self.out):
                    raise Stop(f"--ids and --out both name {path}", ExitCode.USAGE)
                regular = stat.S_ISREG(os.stat(path).st_mode)
                stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115
                if regular:
                    # Read whole once here, to stop at a malformed line before any request;
                    # read again to count what is left beside the sink, then to export.
                    items = _IdFileItems(stream, path)
                    for _item in items:
                        pass
            except OSError as exc:
                raise Stop(f"cannot read --ids {path}: {exc.strerror}", ExitCode.USAGE) from None
            if items is not None:
                file_items = items
                return file_items, lambda _client: aiter_numbers(iter(file_items))
            return None, lambda _client: aiter_stream_ids(stream, path)
        status, unique_id = self.status, self.options.service.account.unique_id
        passed_over = self.stats.passed_over
        statuses = self.statuses = {}
        return None, lambda client: library_video_nos(
            client,
            status=status,
            unique_id=unique_id,
            passed_over=passed_over,
            statuses=statuses,
        )

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
                options = self.options
                assert options.demo is not None
                # What --wait and --follow are for: videos that finish, and new ones.
                processing = DEMO_PROCESSING if options.wait or options.follow else None
                arrivals = DEMO_ARRIVALS if options.follow else None
                server = await stack.enter_async_context(
                    demo_server(options.demo, processing=processing, arrivals=arrivals)
                )
                config = options.service.config(rate=options.rate, demo=server)
                self.redact.add(config.api_key)
                display.note(f"demo: a fake service with {options.demo} videos at {server.url}")
                if processing is not None:
                    pending = sum(video.status == "UNPARSE" for video in server.library)
                    uploads = f"; a new video is uploaded every {arrivals:g}s" if arrivals else ""
                    display.note(
                        f"demo: its {pending} videos still processing finish over the next"
                        f" {processing:g}s{uploads}"
                    )
            client = await stack.enter_async_context(MemoriesClient(config=config))
            await check_rate_store(client)
            if self.options.follow:
                await self._follow(client, source, sink, failures, display)
                return
            await export_to_sink(
                client,
                source(client),
                sink,
                kinds=self.kinds,
                max_concurrency=self.options.concurrency,
                commit_interval=self.options.commit_interval,
                stats=self.stats,
                failures=failures,
                on_progress=display.update,
                on_failure=lambda record: self._note_failure(display, record, failures),
                wait=self.options.wait,
                wait_timeout=self.options.wait_timeout,
                poll=self.options.poll,
                statuses=self.statuses,
            )

    async def _follow(
        self,
        client: MemoriesClient,
        source: Callable[[MemoriesClient], AsyncIterator[IdItem]],
        sink: Sink,
        failures: FailureLog | None,
        display: ExportProgress,
    ) -> None:
        """``--follow``: export the library, then what is new at every listing, until
        cancelled (by a signal: see :func:`run_interruptible`)."""
        interval = self.options.interval or FOLLOW_INTERVAL
        stats = self.stats
        held = HeldBack()

        def on_failure(record: FailureRecord) -> None:
            held.failed(record)
            self._note_failure(display, record, failures)

        while True:
            stats.passed_over.clear()  # what this listing passes over, not every one's
            stats.finished = None
            before = stats.exported
            await export_to_sink(
                client,
                held.filter(source(client), self.kinds),
                sink,
                kinds=self.kinds,
                max_concurrency=self.options.concurrency,
                commit_interval=self.options.commit_interval,
                stats=stats,
                failures=failures,
                on_progress=display.update,
                on_failure=on_failure,
                statuses=self.statuses,
            )
            if stats.exported > before or held.held:
                passed = (
                    f", {held.held} that failed before held back for later listings"
                    if held.held
                    else ""
                )
                display.note(
                    f"following the library: {stats.exported - before} exported by this"
                    f" listing{passed}, {stats.exported} in all; next listing in {interval:g}s"
                )
            held.next_listing()
            await asyncio.sleep(interval)

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
    ) -> ExitCode:
        """Print the summary, the error and the resume hint; return the exit code."""
        stats = self.stats
        if signum is not None:
            status, code = "interrupted", ExitCode.INTERRUPTED
        elif error is not None:
            halted = isinstance(error, AccountHaltedError | AccountError)
            status, code = ("halted" if halted else "error"), exit_code_for(error)
        elif stats.failed:
            status, code = "completed_with_failures", ExitCode.FAILED
        else:
            status, code = "completed", ExitCode.OK
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
        if not self.options.quiet:
            console.print(summary_table(summary))
            passed_over = passed_over_line(stats.passed_over, self.status)
            if passed_over is not None:
                console.print(passed_over, highlight=False, markup=False)
        if isinstance(error, BrokenPipeError):
            silence_stdout()
            message = "stdout was closed before the export ended (broken pipe)"
        if message is not None:
            prefix = ""
            if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
                prefix = "cannot write the output: "
            echo_error(f"{prefix}{message}", self.redact)
        if signum is not None or error is not None:
            click.echo(self.redact(self._resume_hint(sink, signum is not None)), err=True)
        if self.options.json_summary:
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
        stdin = " (with the same input on stdin)" if self.options.ids_file == "-" else ""
        return (
            f"{what}: every transcript written so far is safe in {sink.target};"
            f" resume with{stdin}:\n  {command}"
        )


def passed_over_line(passed_over: Mapping[str, int], listed: str | None, /) -> str | None:
    """The line that says which videos of the library a listing left out, and why:
    ``27 videos of the library were not exported: 20 not ready (UNPARSE 20), 7 failed
    processing (FAILED 7); --all lists the videos in status PARSE``; ``None`` if none."""
    if not passed_over:
        return None
    words = ", ".join(f"{word} {number}" for word, number in sorted(passed_over.items()))
    not_ready = passed_over_count(passed_over, processing_failed=False)
    failed = passed_over_count(passed_over, processing_failed=True)
    videos = "video of the library was" if not_ready + failed == 1 else "videos of the library were"
    return (
        f"{not_ready + failed} {videos} not exported: {not_ready} not"
        f" ready, {failed} failed processing ({words}); --all lists the videos in status"
        f" {listed} (see --status)"
    )
