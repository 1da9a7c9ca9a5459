"""Exporting videos still being processed: never recorded as done; ``--wait``; resuming.

The fake server runs in a thread, and its clock counts the requests it received: a video
"ready after 30" is ready for the 31st request, so when each video is ready does not
depend on how fast the machine is.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memories_async import MemoriesClient, RetryPolicy, TranscriptKind, export_transcripts
from memories_async._batch import jobs_of
from memories_async._cli.app import cli
from memories_async._cli.common import Invocation
from memories_async._export import HOLD_MAX, FailureRecord, HeldBack
from memories_async._ids import IdItem, aiter_numbers
from memories_async.testing import (
    Endpoint,
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerThread,
    FakeVideo,
    FaultKind,
)

from .conftest import finish, start_cli, wait_until

KEY = "sk-test-fake-WAIT-not-a-key-7"
WORDS = [FakeSegment(0, 3, " it is ready")]
READY = [f"VI80000000000000{i:04d}" for i in range(8)]
LATER = [f"VI81000000000000{i:04d}" for i in range(12)]
BROKEN = ["VI820000000000000001", "VI820000000000000002"]


def make_library() -> FakeLibrary:
    return FakeLibrary(FakeVideo(n, visual=WORDS, audio=WORDS) for n in [*READY, *LATER, *BROKEN])


def schedule(server: FakeServer, *, first: int, step: int) -> None:
    """The LATER videos finish one after another, the BROKEN ones fail."""
    for i, number in enumerate(LATER):
        server.processing(number, ready_after=first + step * i)
    for number in BROKEN:
        server.processing(number, ready_after=first, then="PARSE_ERROR")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    made: list[FakeServer] = []

    def requests_so_far() -> float:
        return made[0].stats.total_requests if made else 0

    made.append(FakeServer(make_library(), api_keys=[KEY], clock=requests_so_far))
    with FakeServerThread(made[0]) as running:
        yield running


def records(out: Path) -> Counter[str]:
    return Counter(json.loads(line)["video_no"] for line in out.read_bytes().splitlines())


def failure_codes(path: Path) -> list[tuple[str, str]]:
    lines = [x for x in path.read_text().splitlines() if x and not x.startswith("#")]
    return [(line.split("\t")[0], line.split("\t")[2]) for line in lines]


def client_for(server: FakeServer) -> MemoriesClient:
    return MemoriesClient(api_key=KEY, base_url=server.url, retry=RetryPolicy(backoff=False))


@pytest.mark.asyncio
async def test_without_wait_a_video_not_ready_is_a_failure_that_a_rerun_fetches(
    server: FakeServer, tmp_path: Path
) -> None:
    for number in LATER:
        server.processing(number, ready_after=3600)
    server.processing(BROKEN[0], ready_after=0, then="FAILED")
    out = tmp_path / "out.jsonl"
    async with client_for(server) as client:
        stats = await export_transcripts(client, [*READY, *LATER, BROKEN[0]], out)
    assert records(out) == Counter(READY)
    assert (stats.exported, stats.failed) == (len(READY), len(LATER) + 1)
    assert (stats.not_ready, stats.processing_failed) == (len(LATER), 1)
    codes = dict(failure_codes(Path(f"{out}.failures.tsv")))
    assert codes == {**dict.fromkeys(LATER, "not_ready"), BROKEN[0]: "processing_failed"}
    # The statuses of the empty answers were looked up together, not one by one.
    assert server.stats.requests[Endpoint.LIST_VIDEOS] <= 3
    assert server.stats.requests[Endpoint.GET_METADATA] == 0
    # Once they are ready, a rerun fetches exactly those.
    for number in LATER:
        server.library.replace(number, status="PARSE")
    async with client_for(server) as client:
        again = await export_transcripts(client, [*READY, *LATER, BROKEN[0]], out)
    assert (again.skipped, again.exported) == (len(READY), len(LATER))
    assert records(out) == Counter([*READY, *LATER])


@pytest.mark.asyncio
async def test_wait_exports_each_video_once_as_it_finishes(
    server: FakeServer, tmp_path: Path
) -> None:
    schedule(server, first=30, step=2)
    out = tmp_path / "out.jsonl"
    seen: list[tuple[int, int]] = []
    async with client_for(server) as client:
        stats = await export_transcripts(
            client,
            [*READY, *LATER, *BROKEN],
            out,
            wait=True,
            poll=0.02,
            max_concurrency=4,
            on_progress=lambda s: seen.append((s.waiting, s.exported)),
        )
    assert records(out) == Counter([*READY, *LATER])  # each exactly once
    order = [json.loads(line)["video_no"] for line in out.read_bytes().splitlines()]
    assert set(order[: len(READY)]) == set(READY)  # the ready ones at once
    assert stats.waited == len(LATER)
    assert stats.processing_failed == len(BROKEN)
    assert stats.waiting == 0
    assert any(waiting for waiting, _ in seen)
    assert sorted(failure_codes(Path(f"{out}.failures.tsv"))) == [
        (n, "processing_failed") for n in BROKEN
    ]
    for number in LATER:
        assert server.stats.requests_by_video[number] == 2  # empty, then the transcript


def invoke(args: Sequence[str], server: FakeServer) -> Result:
    env = {"MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": server.url, "COLUMNS": "160"}
    result = CliRunner().invoke(
        cli, list(args), env=env, catch_exceptions=False, obj=Invocation(tuple(args))
    )
    assert KEY not in result.output
    assert KEY not in result.stderr
    return result


def test_export_wait_on_the_command_line(server: FakeServer, tmp_path: Path) -> None:
    schedule(server, first=30, step=2)
    out = tmp_path / "out.jsonl"
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{n}\n" for n in [*READY, *LATER, *BROKEN]))
    args = ["export", "--ids", str(ids), "--out", str(out), "--wait", "--poll", "0.02"]
    result = invoke([*args, "--json-summary"], server)
    assert result.exit_code == 1, result.output  # the two that failed processing
    summary = json.loads(result.stdout)
    assert summary["exported"] == len(READY) + len(LATER)
    assert summary["waited"] == len(LATER)
    assert (summary["failed"], summary["failed_processing"]) == (2, 2)
    stderr = " ".join(result.stderr.split())
    assert "of which not ready / failed processing │ 0 / 2" in stderr
    assert f"exported after waiting for processing │ {len(LATER)}" in stderr
    assert "processing failed (status PARSE_ERROR)" in stderr
    assert records(out) == Counter([*READY, *LATER])


def test_wait_options_are_checked(server: FakeServer, tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    result = invoke(["export", READY[0], "--out", out, "--wait-timeout", "5"], server)
    assert result.exit_code == 2
    assert "--wait-timeout only applies with --wait" in result.stderr
    result = invoke(["export", READY[0], "--out", out, "--wait", "--poll", "0"], server)
    assert result.exit_code == 2


def test_wait_timeout_on_the_command_line(server: FakeServer, tmp_path: Path) -> None:
    server.processing(LATER[0], ready_after=3600)
    out = tmp_path / "out.jsonl"
    args = ["export", READY[0], LATER[0], "--out", str(out), "--wait", "--poll", "0.02"]
    result = invoke([*args, "--wait-timeout", "0.1", "-q"], server)
    assert result.exit_code == 1
    assert failure_codes(Path(f"{out}.failures.tsv")) == [(LATER[0], "wait_timeout")]
    assert records(out) == Counter([READY[0]])


def test_all_with_wait_lists_every_status_and_waits(server: FakeServer, tmp_path: Path) -> None:
    schedule(server, first=30, step=2)
    out = tmp_path / "out.jsonl"
    args = ["export", "--all", "--out", str(out), "--wait", "--poll", "0.02", "-q"]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert records(out) == Counter([*READY, *LATER])
    # The listing gave the statuses: no lookup beyond it and the polls, and no request
    # for the empty answer of a video it listed as processing.
    assert server.stats.requests[Endpoint.GET_METADATA] == 0
    for number in [*LATER, *BROKEN]:
        assert server.stats.requests_by_video[number] == (1 if number in LATER else 0)


# -- a real process, killed ------------------------------------------------------------


def start(server: FakeServer, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    return start_cli(server.url, KEY, args, log)


def ledger_count(out: Path) -> int:
    ledger = Path(f"{out}.ledger")
    return max(len(ledger.read_bytes().split(b"\n")) - 2, 0) if ledger.exists() else 0


@pytest.mark.realtime
def test_a_killed_wait_export_resumes_without_duplicates(
    server: FakeServer, tmp_path: Path
) -> None:
    schedule(server, first=30, step=4)
    out = tmp_path / "out.jsonl"
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{n}\n" for n in [*READY, *LATER, *BROKEN]))
    log = tmp_path / "stderr.log"
    args = ["export", "--ids", str(ids), "--out", str(out), "--wait", "--poll", "0.05"]
    args += ["--commit-interval", "0.05"]
    process = start(server, args, log)
    # Killed once it committed the ready videos and some of those it waited for.
    wait_until(lambda: ledger_count(out) >= len(READY) + 2, process)
    process.kill()
    assert finish(process) == -signal.SIGKILL
    assert ledger_count(out) < len(READY) + len(LATER)
    assert finish(start(server, args, log)) == 1, log.read_text()  # BROKEN failed
    text = log.read_text()
    assert "resuming: " in text
    assert "Traceback" not in text
    assert KEY not in text
    committed = ledger_count(out)
    assert committed == len(READY) + len(LATER)
    assert records(out) == Counter([*READY, *LATER])


# -- --follow ----------------------------------------------------------------------------


@pytest.mark.realtime
def test_follow_exports_new_videos_until_sigterm(server: FakeServer, tmp_path: Path) -> None:
    # READY and LATER are listed at once (status PARSE); BROKEN fails processing. Two
    # videos are uploaded while the export follows the library: after 40 and 60 requests
    # (each listing of the library is one).
    for number in BROKEN:
        server.library.replace(number, status="FAILED")
    uploaded = [FakeVideo(f"VI83000000000000000{i}", visual=WORDS) for i in (1, 2)]
    server.add_video(uploaded[0], after=40)
    server.add_video(uploaded[1], after=60)
    out = tmp_path / "out.jsonl"
    log = tmp_path / "stderr.log"
    args = ["export", "--all", "--follow", "--interval", "0.05", "--out", str(out)]
    process = start(server, args, log)
    everything = len(READY) + len(LATER) + len(uploaded)
    wait_until(lambda: ledger_count(out) >= everything, process)
    listings = server.stats.requests[Endpoint.LIST_VIDEOS]
    wait_until(lambda: server.stats.requests[Endpoint.LIST_VIDEOS] >= listings + 2, process)
    process.send_signal(signal.SIGTERM)
    assert finish(process) == 130
    text = log.read_text()
    assert "interrupted: every transcript written so far is safe in" in text
    assert "Traceback" not in text
    assert KEY not in text
    assert records(out) == Counter([*READY, *LATER, *(v.video_no for v in uploaded)])
    assert ledger_count(out) == everything
    # Idle rounds list the library and fetch nothing again.
    assert server.stats.requests[Endpoint.VIDEO_TRANSCRIPTION] == everything


def test_follow_needs_all_and_no_wait(server: FakeServer, tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    result = invoke(["export", READY[0], "--follow", "--out", out], server)
    assert result.exit_code == 2
    assert "--follow needs --all" in result.stderr
    result = invoke(["export", "--all", "--follow", "--wait", "--out", out], server)
    assert result.exit_code == 2
    assert "give --follow or --wait, not both" in result.stderr
    result = invoke(["export", "--all", "--interval", "5", "--out", out], server)
    assert result.exit_code == 2
    assert "--interval only applies with --follow" in result.stderr
    result = invoke(["export", "--all", "--follow"], server)
    assert result.exit_code == 2
    assert "--follow" in result.stderr


# -- --follow: pairs that keep failing ---------------------------------------------------


def failure(number: str, kind: TranscriptKind = TranscriptKind.VISUAL) -> FailureRecord:
    return FailureRecord(number, kind, code="http_500", attempts=1, message="HTTP 500")


async def listed(held: HeldBack, items: Sequence[IdItem]) -> list[IdItem]:
    return [item async for item in held.filter(aiter_numbers(items), KINDS)]


async def listed_pairs(held: HeldBack, items: Sequence[IdItem]) -> list[tuple[str, TranscriptKind]]:
    return [job for item in await listed(held, items) for job in jobs_of(item, KINDS)]


KINDS = (TranscriptKind.VISUAL, TranscriptKind.AUDIO)


@pytest.mark.asyncio
async def test_a_pair_that_keeps_failing_is_tried_at_ever_fewer_listings() -> None:
    held = HeldBack()
    tried: list[int] = []
    for listing in range(40):
        items = await listed_pairs(held, [READY[0], BROKEN[0]])
        assert (READY[0], TranscriptKind.AUDIO) in items
        if (BROKEN[0], TranscriptKind.AUDIO) in items:
            tried.append(listing)
            held.failed(failure(BROKEN[0], TranscriptKind.AUDIO))  # fails for good
        held.next_listing()
    # 1, 2, 4, 8, 16 listings after each failure.
    assert tried == [0, 1, 3, 7, 15, 31]


@pytest.mark.asyncio
async def test_held_back_passes_over_only_the_failed_pairs() -> None:
    held = HeldBack()
    assert await listed(held, [READY[0], BROKEN[0]]) == [READY[0], BROKEN[0]]
    held.failed(failure(BROKEN[0]))
    held.failed(failure(BROKEN[0]))  # a second failure in one listing: held two listings
    held.next_listing()
    # The failed pair is held, the other kind of the same video is not.
    assert await listed(held, [READY[0], BROKEN[0]]) == [
        READY[0],
        (BROKEN[0], TranscriptKind.AUDIO),
    ]
    assert held.held == 1
    held.next_listing()
    assert held.held == 0
    assert await listed(held, [BROKEN[0]]) == [
        (BROKEN[0], TranscriptKind.VISUAL),
        (BROKEN[0], TranscriptKind.AUDIO),
    ]
    assert held.held == 0


@pytest.mark.asyncio
async def test_the_cap_on_holding_back() -> None:
    held = HeldBack()
    for _ in range(20):
        held.failed(failure(BROKEN[0]))
    tried = []
    for listing in range(2 * HOLD_MAX + 1):
        if (BROKEN[0], TranscriptKind.VISUAL) in await listed_pairs(held, [BROKEN[0]]):
            tried.append(listing)
            held.failed(failure(BROKEN[0]))
        held.next_listing()
    assert tried == [HOLD_MAX, 2 * HOLD_MAX]


@pytest.mark.realtime
def test_follow_holds_back_a_video_that_fails_for_good(server: FakeServer, tmp_path: Path) -> None:
    server.fail(READY[0], FaultKind.HTTP_500)
    out = tmp_path / "out.jsonl"
    failures = tmp_path / "failures.tsv"
    log = tmp_path / "stderr.log"
    args = ["export", "--all", "--follow", "--interval", "0.01", "--attempts", "1"]
    args += ["--out", str(out), "--failures", str(failures)]
    process = start(server, args, log)
    wait_until(lambda: server.stats.requests[Endpoint.LIST_VIDEOS] >= 20, process)
    process.send_signal(signal.SIGTERM)
    assert finish(process) == 130
    listings = server.stats.requests[Endpoint.LIST_VIDEOS]
    failed = [number for number, _code in failure_codes(failures) if number == READY[0]]
    # Tried at listings 0, 1, 3, 7, 15 (and 31, ...): a handful, not one per listing.
    assert 4 <= len(failed) <= 1 + listings.bit_length()
    assert len(failed) < listings // 2
    assert "that failed before held back for later listings" in log.read_text()
    assert ledger_count(out) == len(READY) + len(LATER) + len(BROKEN) - 1
