"""The export engine against the fake server: resume, per-kind skipping, failures, halts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import memories_async
from memories_async import (
    AccountHaltedError,
    MemoriesClient,
    RetryPolicy,
    Transcript,
    TranscriptKind,
    TransientAPIError,
)
from memories_async._batch import jobs_of
from memories_async._export import (
    ExportStats,
    FailureRecord,
    count_pending,
    describe_failure,
    error_message,
    export_to_sink,
    library_video_nos,
    summary_data,
)
from memories_async._formats import ExportFormat, transcript_from_jsonl_record
from memories_async._ids import IdInputError, aiter_numbers
from memories_async._sinks import FailureLog, Sink, StreamFileSink
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    Latency,
)

VISUAL, AUDIO = TranscriptKind.VISUAL, TranscriptKind.AUDIO
BOTH = (VISUAL, AUDIO)
UNKNOWN = "VI000000000000000001"


FakeServerFactory = Callable[..., Awaitable[FakeServer]]


@pytest_asyncio.fixture
async def start_server() -> AsyncIterator[FakeServerFactory]:
    """Start fake servers on 127.0.0.1; every one is stopped after the test."""
    servers: list[FakeServer] = []

    async def start(lib: FakeLibrary | None = None, **options: Any) -> FakeServer:
        server = FakeServer(lib, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.aclose()


def library() -> FakeLibrary:
    lib = FakeLibrary.generate(24, seed=7)
    lib.add(
        FakeVideo(
            "VI900000000000000001",
            visual=[FakeSegment(0, 4, "A caption."), FakeSegment(4, 4, "Instant.")],
            audio=[FakeSegment(1, 3, " Hello there.")],
        ),
        FakeVideo("VI900000000000000002", visual=[], audio=None),
    )
    return lib


def ready(lib: FakeLibrary) -> list[str]:
    return [video.video_no for video in lib.videos(status="PARSE")]


def client_for(server: FakeServer, *, api_key: str | None = None) -> MemoriesClient:
    return MemoriesClient(
        api_key=api_key or server.api_key,
        base_url=server.url,
        retry=RetryPolicy(backoff=False),
    )


def transcription_requests(server: FakeServer) -> Counter[str]:
    return Counter(
        {
            kind: server.stats.requests[endpoint]
            for kind, endpoint in (
                ("visual", "get_video_transcription"),
                ("audio", "get_audio_transcription"),
            )
        }
    )


def read_records(path: Path) -> list[Transcript]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [transcript_from_jsonl_record(json.loads(line)) for line in data.splitlines()]


async def run(
    server: FakeServer,
    ids: Iterable[Any],
    out: Path,
    *,
    kinds: tuple[TranscriptKind, ...] = (VISUAL,),
    failures: FailureLog | None = None,
    concurrency: int = 4,
    on_failure: list[FailureRecord] | None = None,
) -> ExportStats:
    stats = ExportStats()
    async with client_for(server) as client:
        with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
            await export_to_sink(
                client,
                aiter_numbers(list(ids)),
                sink,
                kinds=kinds,
                max_concurrency=concurrency,
                stats=stats,
                failures=failures,
                on_failure=None if on_failure is None else on_failure.append,
            )
    return stats


async def prepared(
    start_server: FakeServerFactory, tmp_path: Path, **options: Any
) -> tuple[FakeServer, list[str], Path]:
    """A server over :func:`library`, its ready videos and an output path."""
    lib = library()
    return await start_server(lib, **options), ready(lib), tmp_path / "out.jsonl"


@pytest.mark.asyncio
async def test_exports_every_pair_once_and_reruns_skip_them(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    ids = ready(lib)
    out = tmp_path / "out.jsonl"
    stats = await run(server, ids, out, kinds=BOTH)
    assert (stats.exported, stats.failed, stats.total, stats.skipped) == (
        2 * len(ids),
        0,
        2 * len(ids),
        0,
    )
    assert stats.empty >= 2  # VI…02 has neither transcript
    records = read_records(out)
    assert Counter((t.video_no, t.kind) for t in records) == Counter(
        {(n, k): 1 for n in ids for k in BOTH}
    )
    first = next(t for t in records if t.video_no == "VI900000000000000001" and t.kind is AUDIO)
    assert [s.text for s in first.segments] == [" Hello there."]
    assert stats.latency.count == stats.exported
    assert stats.finished is not None

    requests = transcription_requests(server)
    again = await run(server, ids, out, kinds=BOTH)
    assert (again.exported, again.skipped, again.total) == (0, 2 * len(ids), 0)
    assert transcription_requests(server) == requests
    assert len(read_records(out)) == 2 * len(ids)


@pytest.mark.asyncio
async def test_a_kind_exported_earlier_costs_no_request(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    ids = ready(lib)
    out = tmp_path / "out.jsonl"
    await run(server, ids, out, kinds=(VISUAL,))
    assert transcription_requests(server) == Counter(visual=len(ids), audio=0)
    stats = await run(server, ids, out, kinds=BOTH)
    assert (stats.exported, stats.skipped) == (len(ids), len(ids))
    assert transcription_requests(server) == Counter(visual=len(ids), audio=len(ids))
    assert len(read_records(out)) == 2 * len(ids)


@pytest.mark.asyncio
async def test_a_resumed_export_of_both_kinds_uses_the_whole_concurrency(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    # Visual exported already: only audio is left, and it gets every slot, not half.
    server, ids, out = await prepared(start_server, tmp_path, latency=Latency.uniform(0.02, 0.03))
    await run(server, ids, out, kinds=(VISUAL,), concurrency=8)
    server.stats.peak_in_flight = 0
    stats = await run(server, ids, out, kinds=BOTH, concurrency=8)
    assert (stats.exported, stats.skipped) == (len(ids), len(ids))
    assert server.stats.peak_in_flight == 8
    assert len(read_records(out)) == 2 * len(ids)


@pytest.mark.asyncio
async def test_pairs_in_the_input_export_that_pair_only(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    server, ids, out = await prepared(start_server, tmp_path)
    items: list[Any] = [(ids[0], AUDIO), (ids[1], "visual"), ids[2], (ids[2], AUDIO)]
    stats = await run(server, items, out, kinds=(VISUAL,))
    assert (stats.exported, stats.duplicates) == (4, 0)
    got = Counter((t.video_no, t.kind) for t in read_records(out))
    assert got == Counter(
        {(ids[0], AUDIO): 1, (ids[1], VISUAL): 1, (ids[2], VISUAL): 1, (ids[2], AUDIO): 1}
    )
    # The same again with both kinds: every pair the items stand for is in the output,
    # repeated ones too.
    again = await run(server, [*items, ids[2]], out, kinds=BOTH)
    assert (again.exported, again.skipped, again.duplicates) == (0, 7, 0)


@pytest.mark.asyncio
async def test_duplicates_are_fetched_once(start_server: FakeServerFactory, tmp_path: Path) -> None:
    lib = library()
    server = await start_server(lib)
    ids = ready(lib)[:3]
    stats = await run(server, [*ids, *ids, ids[0]], tmp_path / "o.jsonl")
    assert (stats.exported, stats.duplicates, stats.total) == (3, 4, 3)
    assert server.stats.requests_by_video[ids[0]] == 1


@pytest.mark.asyncio
async def test_failures_are_recorded_and_the_rest_exported(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    ids = ready(lib)[:4]
    log = FailureLog(str(tmp_path / "failures.tsv"))
    seen: list[FailureRecord] = []
    stats = await run(server, [*ids, UNKNOWN], tmp_path / "o.jsonl", failures=log, on_failure=seen)
    log.close()
    assert (stats.exported, stats.failed) == (4, 1)
    assert [(r.video_no, r.kind, r.code) for r in seen] == [(UNKNOWN, VISUAL, "0001")]
    assert seen[0].attempts == RetryPolicy().transient_attempts
    lines = (tmp_path / "failures.tsv").read_text().splitlines()
    assert lines[1].startswith(f"{UNKNOWN}\tvisual\t0001\t3\tAPI error 0001: video not found")
    assert describe_failure(seen[0]).startswith(f"{UNKNOWN} visual: API error 0001")
    assert describe_failure(seen[0]).endswith("(3 attempts)")


@pytest.mark.asyncio
async def test_an_account_error_halts_and_keeps_what_was_committed(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    out = tmp_path / "o.jsonl"
    stats = ExportStats()
    async with client_for(server, api_key="sk-wrong-key") as client:
        with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
            with pytest.raises(AccountHaltedError) as caught:
                await export_to_sink(
                    client,
                    aiter_numbers(ready(lib)),
                    sink,
                    kinds=BOTH,
                    max_concurrency=2,
                    stats=stats,
                )
    assert caught.value.cause.code == "0401"
    assert "sk-wrong-key" not in str(caught.value)
    assert stats.exported == 0
    assert read_records(out) == []


async def _ids_then_bad_line(ids: list[str]) -> AsyncIterator[str]:
    for number in ids:
        yield number
    raise IdInputError("<stdin>", len(ids) + 1, "whitespace inside the video number 'VI 1'")


@pytest.mark.asyncio
async def test_a_bad_input_line_stops_the_export_cleanly(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    out = tmp_path / "o.jsonl"
    stats = ExportStats()
    async with client_for(server) as client:
        with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
            with pytest.raises(IdInputError, match="line 4"):
                await export_to_sink(
                    client,
                    _ids_then_bad_line(ready(lib)[:3]),
                    sink,
                    kinds=(VISUAL,),
                    max_concurrency=2,
                    stats=stats,
                )
    assert len(read_records(out)) == stats.exported


@pytest.mark.asyncio
async def test_cancelling_keeps_every_committed_transcript_and_a_rerun_finishes(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib, latency=Latency.fixed(0.01))
    ids = ready(lib)
    out = tmp_path / "o.jsonl"
    stats = ExportStats()
    enough = asyncio.Event()

    def on_progress(current: ExportStats) -> None:
        if current.exported >= 5:
            enough.set()

    async def export() -> None:
        async with client_for(server) as client:
            with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
                await export_to_sink(
                    client,
                    aiter_numbers(ids),
                    sink,
                    kinds=BOTH,
                    max_concurrency=2,
                    stats=stats,
                    on_progress=on_progress,
                )

    task = asyncio.create_task(export())
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 5 <= stats.exported < 2 * len(ids)
    assert len(read_records(out)) == stats.exported
    rest = await run(server, ids, out, kinds=BOTH)
    assert rest.skipped == stats.exported
    assert rest.exported == 2 * len(ids) - stats.exported
    assert Counter((t.video_no, t.kind) for t in read_records(out)) == Counter(
        {(n, k): 1 for n in ids for k in BOTH}
    )


class _PickySink(Sink):
    """Delegates to a real sink but cannot render one video."""

    def __init__(self, inner: Sink, refuse: str) -> None:
        self.inner = inner
        self.refuse = refuse
        self.target = inner.target
        self.format = inner.format

    def is_done(self, video_no: str, kind: TranscriptKind, /) -> bool:
        return self.inner.is_done(video_no, kind)

    @property
    def done_count(self) -> int:
        return self.inner.done_count

    def commit(self, transcript: Transcript, /) -> None:
        if transcript.video_no == self.refuse:
            raise ValueError("segment 0 has a time that is not a finite number")
        self.inner.commit(transcript)

    def commit_rendered(self, video_no: str, kind: TranscriptKind, data: bytes, /) -> None:
        self.inner.commit_rendered(video_no, kind, data)


@pytest.mark.asyncio
async def test_a_transcript_that_cannot_be_rendered_is_a_failure(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib)
    ids = ready(lib)[:3]
    stats = ExportStats()
    seen: list[FailureRecord] = []
    async with client_for(server) as client:
        # CSV: a JSON line is rendered as the answer is read, and reading refuses what
        # could not be rendered; a CSV row is rendered by the sink.
        with StreamFileSink(str(tmp_path / "o.csv"), ExportFormat.CSV) as inner:
            await export_to_sink(
                client,
                aiter_numbers(ids),
                _PickySink(inner, ids[1]),
                kinds=(VISUAL,),
                max_concurrency=2,
                stats=stats,
                on_failure=seen.append,
            )
    assert (stats.exported, stats.failed) == (2, 1)
    assert [(r.video_no, r.code) for r in seen] == [(ids[1], "render")]


@pytest.mark.asyncio
async def test_the_kinds_share_the_concurrency(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib, latency=Latency.fixed(0.02))
    await run(server, ready(lib), tmp_path / "o.jsonl", kinds=BOTH, concurrency=4)
    assert 2 <= server.stats.peak_in_flight <= 4


@pytest.mark.asyncio
async def test_the_heartbeat_reports_while_requests_wait(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    server = await start_server(lib, latency=Latency.fixed(0.2))
    snapshots: list[int] = []
    async with client_for(server) as client:
        with StreamFileSink(str(tmp_path / "o.jsonl"), ExportFormat.JSONL) as sink:
            await export_to_sink(
                client,
                aiter_numbers(ready(lib)[:1]),
                sink,
                kinds=(VISUAL,),
                max_concurrency=1,
                stats=ExportStats(),
                on_progress=lambda s: snapshots.append(s.done),
                heartbeat=0.01,
            )
    assert snapshots[0] == 0
    assert snapshots[-1] == 1


@pytest.mark.asyncio
async def test_library_video_nos_lists_the_library(
    start_server: FakeServerFactory,
) -> None:
    lib = library()
    server = await start_server(lib)
    async with client_for(server) as client:
        parsed = [n async for n in library_video_nos(client, status="PARSE")]
        everything = [n async for n in library_video_nos(client, status=None)]
        first = library_video_nos(client, status=None)
        assert await anext(first) == everything[0]
        await first.aclose()
    assert sorted(parsed) == sorted(ready(lib))
    assert len(everything) == len(lib)


@pytest.mark.asyncio
async def test_export_needs_a_kind(start_server: FakeServerFactory, tmp_path: Path) -> None:
    server = await start_server(library())
    async with client_for(server) as client:
        with StreamFileSink(str(tmp_path / "o.jsonl"), ExportFormat.JSONL) as sink:
            with pytest.raises(ValueError, match="kinds"):
                await export_to_sink(
                    client,
                    aiter_numbers([]),
                    sink,
                    kinds=(),
                    max_concurrency=1,
                    stats=ExportStats(),
                )


def test_jobs_of_an_item() -> None:
    assert jobs_of("VI1", BOTH) == (("VI1", VISUAL), ("VI1", AUDIO))
    assert jobs_of(("VI1", "audio"), (VISUAL,)) == (("VI1", AUDIO),)
    assert jobs_of((" VI1 ", AUDIO), BOTH) == (("VI1", AUDIO),)
    with pytest.raises(ValueError, match="kind of a job must be 'visual' or 'audio'"):
        jobs_of(("VI1", "both"), BOTH)


def test_count_pending(tmp_path: Path) -> None:
    with StreamFileSink(str(tmp_path / "o.jsonl"), ExportFormat.JSONL) as sink:
        # An empty output holds nothing to look up: every pair is pending.
        assert count_pending(["VI1", ("VI2", AUDIO), "VI1"], BOTH, sink) == (5, 0)
        sink.commit(Transcript("VI1", VISUAL))
        assert count_pending(["VI1", "VI2"], BOTH, sink) == (3, 1)
        # A pair counts once, also beside the same number bare.
        assert count_pending([("VI2", AUDIO), "VI2", ("VI1", VISUAL)], (VISUAL,), sink) == (2, 1)


def test_stats_rate_and_eta() -> None:
    stats = ExportStats(started=100.0)
    assert stats.eta(now=100.0) is None
    stats.exported, stats.failed = 8, 2
    assert stats.rate(now=105.0) == 2.0
    assert stats.eta(now=105.0) is None  # total unknown
    stats.total = 30
    assert stats.eta(now=105.0) == 10.0
    stats.finished = 110.0
    assert stats.elapsed(now=500.0) == 10.0
    assert ExportStats(started=100.0).rate(now=100.0) == 0.0


def test_summary_data() -> None:
    stats = ExportStats(started=0.0, finished=4.0, exported=6, failed=2, skipped=3, total=8)
    stats.latency.add(0.1)
    data = summary_data(
        stats,
        status="completed_with_failures",
        exit_code=1,
        output="o.jsonl",
        fmt="jsonl",
        kinds=BOTH,
        failures_file="o.jsonl.failures.tsv",
    )
    assert data["rate_per_second"] == 2.0
    assert data["kinds"] == ["visual", "audio"]
    assert data["latency_p95_seconds"] == pytest.approx(0.1, rel=0.03)
    assert json.loads(json.dumps(data)) == data


def test_error_message() -> None:
    error = TransientAPIError("API error 0001: x", code="0001", msg="x", video_no="VI1")
    assert error_message(error) == "API error 0001: x (video_no=VI1)"
    assert error_message(OSError(28, "No space left on device")) == (
        "[Errno 28] No space left on device"
    )
    assert error_message(RuntimeError()) == "RuntimeError"


def test_the_export_engine_needs_no_cli_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['click'] = sys.modules['rich'] = None\n"
        "import memories_async, memories_async._export, memories_async._sinks\n"
        "import memories_async._ids\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout == "ok\n", done.stderr


# -- the public export API ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_public_export_resumes_and_retries_exactly_what_failed(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    lib = library()
    unknown = "VI000000000000000001"
    server = await start_server(lib)
    ids = ready(lib)
    out = tmp_path / "library.jsonl"
    seen: list[FailureRecord] = []
    async with client_for(server) as client:
        stats = await memories_async.export_transcripts(
            client, [*ids[:5], unknown], out, kind="both", on_failure=seen.append
        )
        assert (stats.exported, stats.failed) == (10, 2)
        assert {(r.video_no, r.kind) for r in seen} == {(unknown, VISUAL), (unknown, AUDIO)}
        failures = tmp_path / "library.jsonl.failures.tsv"
        items = list(memories_async.read_id_file(failures))
        assert items == [(unknown, VISUAL), (unknown, AUDIO)]
        # Resumes: the five done are skipped, the rest fetched.
        again = await memories_async.export_transcripts(client, ids, out, kind="both")
        assert (again.exported, again.skipped) == (2 * len(ids) - 10, 10)
        subs = tmp_path / "subs"
        per_video = await memories_async.export_transcripts(
            client, aiter_numbers(ids[:3]), subs, format="srt", kind="audio"
        )
        assert per_video.exported == 3
    assert len(read_records(out)) == 2 * len(ids)
    assert sorted(p.name for p in subs.iterdir()) == sorted(f"{n}.audio.srt" for n in ids[:3])


@pytest.mark.asyncio
async def test_the_public_export_refuses_an_unusable_output(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    server = await start_server(library())
    (tmp_path / "taken.jsonl").write_text("not an export\n")
    async with client_for(server) as client:
        with pytest.raises(memories_async.OutputError, match="was not written by an export"):
            await memories_async.export_transcripts(client, ["VI1"], tmp_path / "taken.jsonl")
        with pytest.raises(ValueError, match=r"^'format' must be one of jsonl, csv, srt, vtt, txt"):
            await memories_async.export_transcripts(client, ["VI1"], tmp_path / "x", format="SRT!")
        out = tmp_path / "new.jsonl"
        with pytest.raises(memories_async.OutputError, match="is the output's ledger"):
            await memories_async.export_transcripts(
                client, ["VI1"], out, failures=tmp_path / "new.jsonl.ledger"
            )
        assert not out.exists()
    assert sum(server.stats.requests.values()) == 0


@pytest.mark.asyncio
async def test_an_export_ends_when_its_last_record_fills_a_group(
    start_server: FakeServerFactory, tmp_path: Path
) -> None:
    # The last record asks for a commit just as the export stops its committer: the
    # cancellation must not be lost (the export then never ended). The timeout only
    # turns such a hang into a failure.
    server, ids, out = await prepared(start_server, tmp_path)
    stats = ExportStats()
    async with asyncio.timeout(60), client_for(server) as client:
        with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
            await export_to_sink(
                client,
                aiter_numbers(ids[:10]),
                sink,
                kinds=(VISUAL,),
                max_concurrency=2,
                stats=stats,
                commit_every=5,
                commit_interval=30.0,
            )
            assert sink.pending == 0
    assert stats.exported == 10
    assert len(read_records(out)) == 10
