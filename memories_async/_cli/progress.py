"""What an export shows on stderr: a live progress bar, plain progress lines, a summary table.

Part of the command line (it imports rich, from the ``cli`` extra). On a terminal the bar
shows done/total (total once known), the rate, the time left, retries, failures and skipped
pairs, and messages (failures, resumes) scroll above it. When stderr is not a terminal (a log
file, CI), a plain line with the same figures is printed every ``interval`` seconds and once
at the end. ``quiet`` shows nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from .._export import ExportStats


def format_duration(seconds: float | None, /) -> str:
    """``H:MM:SS`` for a duration in seconds; ``"-"`` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _seconds(value: float | None) -> str:
    """A latency for the summary: ``120 ms`` or ``1.50 s``; ``-`` when unknown."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def format_rate(rate: float, /) -> str:
    """Requests per second as people read them: ``4.98``, ``12.5``, ``2,560``."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def progress_figures(stats: ExportStats, /, now: float | None = None) -> str:
    """The figures of a progress line: ``12/200 (6%) · 4.1/s · eta 0:00:46 · retries 2 ...``."""
    done = stats.done
    if stats.total is None:
        count = f"{done}/{stats.queued}+"
    else:
        share = 100.0 * done / stats.total if stats.total else 100.0
        count = f"{done}/{stats.total} ({share:.0f}%)"
    parts = [
        count,
        f"{stats.rate(now):.1f}/s",
        f"eta {format_duration(stats.eta(now))}",
        f"retries {stats.retries}",
        f"failed {stats.failed}",
    ]
    if stats.pacing is not None:
        parts.append(f"pacing {format_rate(stats.pacing)}/s")
    if stats.rate_limited:
        parts.append(f"refused {stats.rate_limited}")
    if stats.skipped:
        parts.append(f"skipped {stats.skipped}")
    if stats.waiting or stats.waited:
        parts.append(f"waiting {stats.waiting} · waited {stats.waited}")
    return " · ".join(parts)


class ExportProgress:
    """Shows an export's progress on a rich console (stderr); a context manager.

    ``live=True`` draws a progress bar (use it when the console is a terminal);
    otherwise a plain line is printed every ``interval`` seconds and when the display
    stops. ``quiet=True`` shows nothing at all, not even :meth:`note` messages.
    """

    def __init__(
        self,
        console: Console,
        /,
        *,
        live: bool,
        quiet: bool = False,
        interval: float = 10.0,
        label: str = "exporting",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.live = live and not quiet
        self.quiet = quiet
        self.interval = interval
        self.label = label
        self._clock = clock
        self._last_line: float | None = None
        self._stats: ExportStats | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start drawing (the bar) or timing (the plain lines)."""
        self._last_line = self._clock()
        if not self.live or self._progress is not None:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(self.label, total=None, figures="")
        self._progress.start()

    def update(self, stats: ExportStats, /) -> None:
        """Show the current figures (the plain line only when ``interval`` has passed)."""
        self._stats = stats
        if self.quiet:
            return
        if self._progress is not None and self._task is not None:
            self._draw(self._progress, self._task, stats)
            return
        now = self._clock()
        if self._last_line is not None and now - self._last_line >= self.interval:
            self._print_line(stats)

    @staticmethod
    def _draw(progress: Progress, task: TaskID, stats: ExportStats) -> None:
        """Update the bar's task from the stats."""
        figures = progress_figures(stats).split(" · ", 1)[1]
        if stats.total is None:
            figures = f"{stats.queued} found so far · {figures}"
        progress.update(task, completed=stats.done, total=stats.total, figures=figures)

    def _print_line(self, stats: ExportStats) -> None:
        """Print one plain progress line and restart the interval."""
        self._last_line = self._clock()
        self.console.print(
            f"{self.label}: {progress_figures(stats)}", markup=False, highlight=False
        )

    def note(self, message: str, /) -> None:
        """Print a message line (above the bar when it is drawn)."""
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        """Stop the bar, leaving its last state; print a last plain line; idempotent."""
        progress, self._progress = self._progress, None
        task, self._task = self._task, None
        if progress is not None:
            if self._stats is not None and task is not None:
                self._draw(progress, task, self._stats)
            progress.stop()
        elif not self.quiet and self._stats is not None and self._last_line is not None:
            self._print_line(self._stats)
        self._last_line = None


def summary_table(summary: Mapping[str, Any], /) -> Table:
    """A two-column table of a run's summary (the data :func:`summary_data` returns)."""
    table = Table(title="export summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("status", str(summary["status"]))
    table.add_row("exported", f"{summary['exported']} ({summary['empty']} without segments)")
    table.add_row("skipped (already done)", str(summary["skipped"]))
    table.add_row("failed", str(summary["failed"]))
    if summary.get("failed_not_ready") or summary.get("failed_processing"):
        table.add_row(
            "of which not ready / failed processing",
            f"{summary['failed_not_ready']} / {summary['failed_processing']}",
        )
    if summary.get("waited"):
        table.add_row("exported after waiting for processing", str(summary["waited"]))
    if summary.get("not_ready") or summary.get("processing_failed"):
        table.add_row(
            "not listed: not ready / failed processing",
            f"{summary['not_ready']} / {summary['processing_failed']}",
        )
    if summary.get("pairs"):
        table.add_row("(video, kind) pairs asked for by line", str(summary["pairs"]))
    if summary["duplicates"]:
        table.add_row("duplicate ids dropped", str(summary["duplicates"]))
    table.add_row("retries", str(summary["retries"]))
    table.add_row("refused by the quota (retried)", str(summary["rate_limited"]))
    if summary.get("pacing") is not None:
        table.add_row("pacing at the end", f"{format_rate(summary['pacing'])} requests/s")
    table.add_row("elapsed", format_duration(summary["elapsed_seconds"]))
    table.add_row("rate", f"{summary['rate_per_second']:.2f}/s")
    table.add_row(
        "latency p50 / p95",
        f"{_seconds(summary['latency_p50_seconds'])} / {_seconds(summary['latency_p95_seconds'])}",
    )
    table.add_row("output", str(summary["output"]))
    if summary["failures_file"] and summary["failed"]:
        table.add_row("failures", str(summary["failures_file"]))
    return table


class ConsoleLogHandler(logging.Handler):
    """Writes log records to a rich console (above a live bar), through a redaction step."""

    def __init__(self, console: Console, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.console = console
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        """Print one formatted, redacted record."""
        try:
            text = self.redact(self.format(record))
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
