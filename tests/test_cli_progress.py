"""The progress display: plain lines off a terminal, a bar on one, the summary table."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from memories_async._cli.progress import (
    ConsoleLogHandler,
    ExportProgress,
    format_duration,
    format_rate,
    progress_figures,
    summary_table,
)
from memories_async._export import ExportStats, summary_data
from memories_async._models import TranscriptKind


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=120), buffer


def test_format_rate() -> None:
    assert [format_rate(r) for r in (0.05, 4.98, 12.5, 99.94, 2560.4)] == [
        "0.05",
        "4.98",
        "12.5",
        "99.9",
        "2,560",
    ]


def test_format_duration() -> None:
    assert format_duration(None) == "-"
    assert format_duration(0) == "0:00:00"
    assert format_duration(3725.4) == "1:02:05"


def test_progress_figures() -> None:
    stats = ExportStats(started=0.0, exported=30, failed=2, retries=4, skipped=7)
    assert progress_figures(stats, now=8.0) == (
        "32/0+ · 4.0/s · eta - · retries 4 · failed 2 · skipped 7"
    )
    stats.total, stats.rate_limited = 64, 3
    assert progress_figures(stats, now=8.0) == (
        "32/64 (50%) · 4.0/s · eta 0:00:08 · retries 4 · failed 2 · refused 3 · skipped 7"
    )
    stats.pacing = 4.98
    assert progress_figures(stats, now=8.0) == (
        "32/64 (50%) · 4.0/s · eta 0:00:08 · retries 4 · failed 2 · pacing 4.98/s · refused 3"
        " · skipped 7"
    )
    assert progress_figures(ExportStats(started=0.0, total=0), now=1.0).startswith("0/0 (100%)")


def test_plain_lines_every_interval_and_at_the_end() -> None:
    console, buffer = plain_console()
    clock = Clock()
    stats = ExportStats(started=clock.now, total=10)
    with ExportProgress(console, live=False, interval=10.0, clock=clock) as display:
        stats.exported = 1
        display.update(stats)
        assert buffer.getvalue() == ""
        clock.now += 10.0
        stats.exported = 4
        display.update(stats)
        clock.now += 3.0
        display.update(stats)
        display.note("failed: VI1 visual: boom")
        stats.exported = 10
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("exporting: 4/10 (40%)")
    assert lines[1] == "failed: VI1 visual: boom"
    assert lines[2].startswith("exporting: 10/10 (100%)")
    assert len(lines) == 3


def test_quiet_shows_nothing() -> None:
    console, buffer = plain_console()
    clock = Clock()
    stats = ExportStats(started=clock.now)
    with ExportProgress(console, live=True, quiet=True, interval=0.0, clock=clock) as display:
        display.update(stats)
        display.note("hello")
    assert buffer.getvalue() == ""


def test_the_live_bar_draws_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    stats = ExportStats(total=None)
    display = ExportProgress(console, live=True)
    display.start()
    display.start()  # idempotent
    stats.queued, stats.exported = 7, 3
    display.update(stats)
    display.note("resuming: out.jsonl holds 2 transcripts")
    stats.total = 7
    stats.exported = 7
    display.update(stats)
    display.stop()
    display.stop()
    text = buffer.getvalue()
    assert "exporting" in text
    assert "7/7" in text
    assert "resuming: out.jsonl holds 2 transcripts" in text


def test_summary_table_renders_every_figure() -> None:
    stats = ExportStats(started=0.0, finished=65.0, exported=120, empty=3, skipped=5, failed=2)
    stats.duplicates, stats.retries, stats.rate_limited, stats.pacing = 1, 9, 4, 4.5
    for value in (0.05, 0.2, 1.5):
        stats.latency.add(value)
    summary = summary_data(
        stats,
        status="completed_with_failures",
        exit_code=1,
        output="out.jsonl",
        fmt="jsonl",
        kinds=(TranscriptKind.VISUAL,),
        failures_file="out.jsonl.failures.tsv",
    )
    console, buffer = plain_console()
    console.print(summary_table(summary))
    text = buffer.getvalue()
    for expected in (
        "completed_with_failures",
        "120 (3 without segments)",
        "skipped (already done)",
        "duplicate ids dropped",
        "refused by the quota (retried)",
        "pacing at the end",
        "4.5 requests/s",
        "0:01:05",
        "1.88/s",
        "ms / 1.",
        "out.jsonl.failures.tsv",
    ):
        assert expected in text, expected
    empty = summary_data(
        ExportStats(started=0.0, finished=1.0),
        status="completed",
        exit_code=0,
        output="-",
        fmt="csv",
        kinds=(TranscriptKind.AUDIO,),
        failures_file=None,
    )
    console, buffer = plain_console()
    console.print(summary_table(empty))
    assert "- / -" in buffer.getvalue()
    assert "failures" not in buffer.getvalue().replace("failed", "")


def test_console_log_handler_redacts() -> None:
    console, buffer = plain_console()
    handler = ConsoleLogHandler(console, lambda text: text.replace("sk-secret", "***"))
    logger = logging.getLogger("memories_async.test_progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("key is %s", "sk-secret")
    finally:
        logger.removeHandler(handler)
    assert buffer.getvalue() == "key is ***\n"
