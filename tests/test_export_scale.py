"""The export at scale, as a real process: memory that does not grow with the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memories_async import Transcript, TranscriptKind
from memories_async._formats import to_jsonl_line
from memories_async._sinks import LEDGER_VERSION

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)"),
]

PAIRS = 1_000_000
MAX_RSS_MB = 150


def _numbers(count: int) -> list[str]:
    return [f"VI{600000000000000000 + n:018d}" for n in range(count)]


@pytest.mark.realtime
def test_resuming_a_million_done_pairs_stays_small(tmp_path: Path) -> None:
    # A ledger of a million committed records, and the id file that made them: the
    # rerun has nothing to fetch, and must not need more than MAX_RSS_MB to find out.
    numbers = _numbers(PAIRS)
    out = tmp_path / "big.jsonl"
    write_done_export(out, numbers)
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{number}\n" for number in numbers), encoding="ascii")
    del numbers
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    env.update(MEMORIES_API_KEY="sk-test-nothing-to-fetch", MEMORIES_BASE_URL="http://127.0.0.1:9")
    command = [sys.executable, "-m", "memories_async._cli", "export", "--ids", str(ids)]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--json-summary", "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak_kb = 0
    while process.poll() is None:
        # The child's own peak: what a fork of this big test process shared is not its.
        peak_kb = max(peak_kb, _peak_rss_kb(process.pid))
        time.sleep(0.01)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert (summary["exported"], summary["skipped"], summary["total"]) == (0, PAIRS, 0)
    assert 0 < peak_kb < MAX_RSS_MB * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


def write_done_export(out: Path, numbers: list[str]) -> None:
    """An export of ``numbers`` (visual, empty transcripts) whose ledger records them all."""
    offset = 0
    with open(out, "wb") as data, open(f"{out}.ledger", "wb") as ledger:
        ledger.write(f"memories-async export ledger {LEDGER_VERSION} jsonl\n".encode())
        for number in numbers:
            line = to_jsonl_line(Transcript(number, TranscriptKind.VISUAL))
            data.write(line)
            offset += len(line)
            ledger.write(b"%d\tvisual\t%s\n" % (offset, number.encode()))


def _peak_rss_kb(pid: int) -> int:
    """``VmHWM`` of a running process (its peak resident set since it started), in kB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
