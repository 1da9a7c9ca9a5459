"""The export as a real process: killed with SIGKILL at random points, interrupted, resumed.

Each test drives the command line in a child process against a fake server thread with some
latency and a few faults. Kills happen after a random number of new commits, so they land
in the middle of the work; whatever the moment, the next run must finish the export with
every transcript exactly once, no partial record and no temporary file.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import srt
from click.testing import CliRunner

from memories_async._cli.app import cli
from memories_async._formats import CSV_HEADER, transcript_from_jsonl_record
from memories_async.testing import (
    DEFAULT_API_KEY,
    FakeLibrary,
    FakeServer,
    FakeServerThread,
    FaultRule,
    Latency,
)

from .conftest import GIVE_UP, finish, start_cli, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

KEY = "sk-mavi-fake-Qm4t-SIGNALS-v8Lx2"
LIBRARY = FakeLibrary.generate(80, seed=21)
IDS = sorted(video.video_no for video in LIBRARY.videos(status="PARSE"))[:60]
KINDS = ("visual", "audio")
PAIRS = {(number, kind) for number in IDS for kind in KINDS}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    fake = FakeServer(
        FakeLibrary.generate(80, seed=21),
        api_keys=[KEY],
        latency=Latency.uniform(0.02, 0.06),
        faults=[FaultRule.random(0.03)],
        seed=3,
    )
    with FakeServerThread(fake) as running:
        yield running


@pytest.fixture
def ids_file(tmp_path: Path) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("# the videos\n" + "".join(f"{n}\n" for n in IDS))
    return path


def start(server: FakeServer, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    return start_cli(server.url, KEY, args, log)


def ledger_entries(out: Path) -> list[tuple[int, str, str]]:
    """The complete entries of a stream output's ledger (a torn last line is ignored)."""
    ledger = Path(f"{out}.ledger")
    if not ledger.exists():
        return []
    entries = []
    for line in ledger.read_bytes().split(b"\n")[1:-1]:
        offset, kind, number = line.decode().split("\t")
        entries.append((int(offset), kind, number))
    return entries


def committed(out: Path, fmt: str) -> int:
    if fmt == "srt":
        return len(list(out.glob("*.srt"))) if out.exists() else 0
    return len(ledger_entries(out))


def check_committed_part(out: Path, fmt: str) -> None:
    """After a kill: what the ledger records is whole; per-video files all parse."""
    if fmt == "srt":
        for path in out.glob("*.srt"):
            list(srt.parse(path.read_text(encoding="utf-8")))
        return
    entries = ledger_entries(out)
    if not entries:
        return
    data = out.read_bytes()
    end = entries[-1][0]
    assert len(data) >= end
    prefix = data[:end]
    assert prefix.endswith(b"\n")
    if fmt == "jsonl":
        records = [json.loads(line) for line in prefix.splitlines()]
        assert len(records) == len(entries)


def check_complete(out: Path, fmt: str) -> None:
    """Every (video, kind) exactly once, whole, and nothing left over."""
    if fmt == "srt":
        names = sorted(path.name for path in out.iterdir() if path.name != "failures.tsv")
        assert names == sorted(f"{n}.{k}.srt" for n, k in PAIRS)
        for number, kind in PAIRS:
            cues = list(srt.parse((out / f"{number}.{kind}.srt").read_text(encoding="utf-8")))
            assert len(cues) == len(LIBRARY[number].segments(kind) or ())
        return
    data = out.read_bytes()
    assert data.endswith(b"\n")
    entries = ledger_entries(out)
    assert entries[-1][0] == len(data)
    assert Counter((number, kind) for _, kind, number in entries) == Counter(
        dict.fromkeys(PAIRS, 1)
    )
    if fmt == "jsonl":
        records = [transcript_from_jsonl_record(json.loads(line)) for line in data.splitlines()]
        assert Counter((t.video_no, t.kind.value) for t in records) == Counter(
            dict.fromkeys(PAIRS, 1)
        )
        for t in records:
            assert len(t.segments) == len(LIBRARY[t.video_no].segments(t.kind.value) or ())
        return
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(CSV_HEADER)
    body = rows[1:]
    assert list(CSV_HEADER) not in body
    keys = Counter((row[0], row[1], row[2]) for row in body)
    assert max(keys.values()) == 1
    per_pair = Counter((row[0], row[1]) for row in body)
    for number, kind in PAIRS:
        assert per_pair[(number, kind)] == len(LIBRARY[number].segments(kind) or ())


@pytest.mark.realtime
@pytest.mark.parametrize(
    ("fmt", "kills", "interval"),
    [
        ("jsonl", 3, None),
        ("csv", 2, None),
        ("srt", 2, None),
        # Groups committed back to back: the kills land during a group commit too.
        ("jsonl", 4, "0.001"),
        ("srt", 3, "0.001"),
    ],
)
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    server: FakeServer, ids_file: Path, tmp_path: Path, fmt: str, kills: int, interval: str | None
) -> None:
    rng = random.Random(f"sigkill-{fmt}-{interval}")
    out = tmp_path / ("subs" if fmt == "srt" else f"out.{fmt}")
    log = tmp_path / "stderr.log"
    args = ["export", "--ids", str(ids_file), "--format", fmt, "--out", str(out)]
    args += ["--kind", "both", "--concurrency", "6"]
    if interval is not None:
        args += ["--commit-interval", interval]
    for _ in range(kills):
        target = committed(out, fmt) + rng.randint(1, 10)
        process = start(server, args, log)
        wait_until(lambda: committed(out, fmt) >= target, process)  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.03))
        process.kill()
        assert finish(process) == -signal.SIGKILL
        check_committed_part(out, fmt)
    assert committed(out, fmt) < len(PAIRS)
    assert finish(start(server, args, log)) == 0, log.read_text()
    check_complete(out, fmt)
    if fmt == "srt":
        assert not list(out.glob(".memories-export-*"))
    text = log.read_text()
    assert "resuming: " in text
    assert "Traceback" not in text
    assert KEY not in text


@pytest.mark.realtime
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupt_stops_cleanly_and_prints_how_to_resume(
    server: FakeServer, ids_file: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out.jsonl"
    log = tmp_path / "stderr.log"
    args = ["export", "--ids", str(ids_file), "--out", str(out), "--kind", "both"]
    args += ["--concurrency", "2"]
    process = start(server, args, log)
    wait_until(lambda: len(ledger_entries(out)) >= 3, process)
    process.send_signal(signum)
    assert finish(process) == 130
    text = log.read_text()
    assert "interrupted: every transcript written so far is safe in" in text
    assert f"resume with:\n  memories-async export --ids {ids_file}" in text
    assert "Traceback" not in text
    assert KEY not in text
    entries = ledger_entries(out)
    assert entries[-1][0] == out.stat().st_size  # a clean stop leaves no unfinished record
    assert len(entries) < len(PAIRS)
    args[-1] = "8"  # finish faster; the concurrency is not part of what makes a resume
    assert finish(start(server, args, log)) == 0
    check_complete(out, "jsonl")


@pytest.mark.realtime
def test_the_fake_server_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "memories_async._cli", "fake-server", "--port", "0"),
            *("--videos", "5", "--seed", "4"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        number = FakeLibrary.generate(5, seed=4).videos(status="PARSE")[0].video_no
        result = CliRunner().invoke(
            cli,
            ["get", number, "--base-url", url, "--format", "txt"],
            env={"MEMORIES_API_KEY": DEFAULT_API_KEY, "MEMORIES_UNIQUE_ID": None},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.strip()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=GIVE_UP) == 0
        assert process.stderr is not None
        assert f"api key: {DEFAULT_API_KEY}" in process.stderr.read().decode()
    finally:
        if process.poll() is None:  # pragma: no cover - only when a test fails
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.realtime
@pytest.mark.parametrize("source", ["fifo", "stdin"])
def test_an_interrupt_ends_the_export_while_the_ids_producer_stays_open(
    server: FakeServer, tmp_path: Path, source: str
) -> None:
    # The reader of the ids is blocked on a producer that neither writes nor closes: the
    # interrupt must still end the process (it hung, or aborted at interpreter exit).
    log = tmp_path / "stderr.log"
    lines = "".join(f"{n}\n" for n in IDS[:3]).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    env.update(MEMORIES_API_KEY=KEY, MEMORIES_BASE_URL=server.url)
    writer: int | None = None
    if source == "fifo":
        fifo = tmp_path / "ids.fifo"
        os.mkfifo(fifo)
        writer = os.open(fifo, os.O_RDWR)  # a producer that stays
        os.write(writer, lines)
        ids = str(fifo)
    else:
        ids = "-"
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "memories_async._cli", "export", "--ids", ids],
            env=env,
            stdin=subprocess.PIPE if source == "stdin" else subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    try:
        if process.stdin is not None:
            process.stdin.write(lines)
            process.stdin.flush()  # and kept open
        # The export writes to stdout, the log here: wait for its three records.
        wait_until(lambda: log.read_bytes().count(b'"schema":1') >= 3, process)
        process.send_signal(signal.SIGINT)
        assert finish(process) == 130
    finally:
        if writer is not None:
            os.close(writer)
        if process.stdin is not None:
            process.stdin.close()
    text = log.read_text()
    assert "Fatal Python error" not in text
    assert "Traceback" not in text
