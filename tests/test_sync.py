"""The blocking client: every method of the async one, one loop thread per client, clean ends.

Against the fake server in its own thread (:class:`FakeServerThread`), as a script would
use it: the sync client's calls, its batches as plain iterators (leaving the block
cancels what runs), inputs that call the client, Ctrl-C during a call, use from inside
a running event loop (a notebook), and no thread left behind after ``close()``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from memories_async import (
    ConfigError,
    Fetched,
    MemoriesClient,
    RetryPolicy,
    TranscriptKind,
    export_transcripts,
)
from memories_async.sync import SyncIterator, SyncMemoriesClient, SyncTranscriptBatch
from memories_async.testing import (
    DEFAULT_API_KEY,
    FakeLibrary,
    FakeServer,
    FakeServerThread,
    FaultKind,
    FaultRule,
)

LIBRARY_SIZE = 8
WAIT = 30.0
"""Seconds a test waits at most for something another thread does (never a threshold)."""


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("memories-async")]


@pytest.fixture
def sigint() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt (even where SIGINT was ignored, as in a
    background job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c() -> None:
    """What Ctrl-C does: SIGINT to the main thread, which wakes it from a blocking wait
    (``_thread.interrupt_main`` would only be seen at its next bytecode)."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the other thread did not get there"
        time.sleep(0.005)


@pytest.fixture
def library() -> FakeLibrary:
    return FakeLibrary.generate(LIBRARY_SIZE, seed=3)


@pytest.fixture
def server(library: FakeLibrary) -> Iterator[FakeServer]:
    hung = library.videos()[-1].video_no
    fake = FakeServer(library, faults=[FaultRule(FaultKind.HANG, video_nos={hung})])
    with FakeServerThread(fake) as running:
        yield running


@pytest.fixture
def client(server: FakeServer) -> Iterator[SyncMemoriesClient]:
    assert _our_threads() == []
    with SyncMemoriesClient(api_key=server.api_key, base_url=server.url) as c:
        assert _our_threads() == ["memories-async-loop"]
        yield c
    assert _our_threads() == []


def _numbers(library: FakeLibrary) -> list[str]:
    """Every video number in status PARSE but the last, whose transcription request hangs."""
    return [video.video_no for video in library.videos()[:-1] if video.status == "PARSE"]


def _hung(library: FakeLibrary) -> str:
    return library.videos()[-1].video_no


# -- the calls -------------------------------------------------------------------


def test_each_call_answers_as_the_async_client(
    client: SyncMemoriesClient, library: FakeLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORIES_API_KEY", DEFAULT_API_KEY)
    number = _numbers(library)[0]
    transcript = client.get_transcription(number, kind="audio")
    assert transcript.video_no == number
    assert transcript.kind is TranscriptKind.AUDIO

    async def by_the_async_client() -> Any:
        async with MemoriesClient(base_url=client.config.base_url) as async_client:
            return await async_client.get_transcription(number, kind="audio")

    assert transcript == asyncio.run(by_the_async_client())
    video = client.get_metadata(number)
    assert video is not None
    assert video.video_no == number
    assert client.get_metadata("VI000000000000000000") is None
    assert client.wait_until_ready(number, poll=0.01) == video
    assert client.list_unique_ids() == ("default",)
    with client.list_videos(page_size=3) as videos:
        assert isinstance(videos, SyncIterator)
        listed = [video.video_no for video in videos]
    assert sorted(listed) == sorted(v.video_no for v in library.videos())
    assert client.config.base_url.startswith("http://127.0.0.1:")
    assert "open" in repr(client)


def test_the_signatures_are_the_async_clients() -> None:
    def parameters(
        function: Callable[..., Any], *, evaluate: bool = True
    ) -> list[inspect.Parameter]:
        signature = inspect.signature(function, eval_str=evaluate)
        return list(signature.parameters.values())[1:]

    for name in (
        "get_transcription",
        "get_metadata",
        "wait_until_ready",
        "list_unique_ids",
        "list_videos",
        "fetch_transcriptions",
        "gather_transcriptions",
        "with_options",
    ):
        sync_method = getattr(SyncMemoriesClient, name)
        assert parameters(sync_method) == parameters(getattr(MemoriesClient, name)), name
        assert sync_method.__name__ == name
        assert f":meth:`~memories_async.MemoriesClient.{name}`" in sync_method.__doc__
    assert parameters(SyncMemoriesClient.export_transcripts) == parameters(export_transcripts)
    # The OpenTelemetry providers' types are imported for type checkers only (the extra
    # is optional): the constructors' annotations are compared as written.
    settings = [
        p
        for p in parameters(MemoriesClient, evaluate=False)
        if p.name not in {"session", "governor"}
    ]
    assert parameters(SyncMemoriesClient, evaluate=False) == settings


def test_several_threads_share_one_client(
    client: SyncMemoriesClient, library: FakeLibrary, server: FakeServer
) -> None:
    numbers = _numbers(library)
    results: dict[str, str] = {}

    def fetch(number: str) -> None:
        results[number] = client.get_transcription(number).video_no

    threads = [threading.Thread(target=fetch, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: n for n in numbers}
    assert _our_threads() == ["memories-async-loop"]


def test_gather_and_export(
    client: SyncMemoriesClient, library: FakeLibrary, tmp_path: Path
) -> None:
    numbers = _numbers(library)
    outcomes = client.gather_transcriptions(numbers, kind=("visual", "audio"))
    assert set(outcomes) == {(n, k) for n in numbers for k in TranscriptKind}
    assert all(outcome.ok for outcome in outcomes.values())
    out = tmp_path / "library.jsonl"
    stats = client.export_transcripts(iter(numbers), out, kind="both")
    assert stats.exported == 2 * len(numbers)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["video_no"], r["kind"]) for r in records} == set(outcomes)
    assert _our_threads() == ["memories-async-loop"]  # the input's thread ended


def test_an_input_that_is_not_iterable_is_the_async_clients_error(
    client: SyncMemoriesClient,
) -> None:
    with pytest.raises(TypeError):
        client.gather_transcriptions(cast(Any, 5))
    with pytest.raises(TypeError, match="not one string"):
        client.fetch_transcriptions(cast(Any, "VI600000000000000000"))
    with pytest.raises(TypeError):
        cast(Any, client.fetch_transcriptions)()
    with pytest.raises(ValueError, match="'max_concurrency' must be > 0"):
        client.fetch_transcriptions(iter(["VI600000000000000000"]), max_concurrency=0)
    assert _our_threads() == ["memories-async-loop"]


# -- batches -----------------------------------------------------------------------


def test_a_batch_is_a_plain_iterator_of_outcomes(
    client: SyncMemoriesClient, library: FakeLibrary
) -> None:
    numbers = _numbers(library)
    with client.fetch_transcriptions(numbers, ordered=True, max_concurrency=2) as batch:
        assert isinstance(batch, SyncTranscriptBatch)
        assert iter(batch) is batch
        outcomes = list(batch)
        assert "SyncTranscriptBatch" in repr(batch)
        stats = batch.stats()
    assert [o.video_no for o in outcomes] == numbers
    assert all(isinstance(o, Fetched) for o in outcomes)
    assert stats.succeeded == len(numbers)
    assert stats.peak_in_flight <= 2
    with client.fetch_transcriptions(numbers) as batch:
        assert set(batch.collect()) == {(n, TranscriptKind.VISUAL) for n in numbers}


def test_a_batch_is_iterated_inside_its_with_block(client: SyncMemoriesClient) -> None:
    batch = client.fetch_transcriptions(["VI600000000000000001"])
    with pytest.raises(RuntimeError, match=r"with client\.fetch_transcriptions"):
        next(batch)
    batch.close()
    with pytest.raises(RuntimeError, match="closed"):
        next(batch)
    with pytest.raises(RuntimeError, match="closed"), batch:
        pass


def test_leaving_the_block_cancels_the_work_still_running(
    client: SyncMemoriesClient, library: FakeLibrary, server: FakeServer
) -> None:
    hung = _hung(library)
    with client.fetch_transcriptions([hung, *_numbers(library)]) as batch:
        for outcome in batch:
            assert outcome.video_no != hung
            break
        assert server.stats.requests_by_video[hung] == 1
    _wait_until(lambda: server.stats.in_flight == 0)
    number = _numbers(library)[0]
    assert client.get_transcription(number).video_no == number  # still usable


def test_an_input_may_call_the_client_and_is_read_in_a_thread_of_its_batch(
    client: SyncMemoriesClient, library: FakeLibrary
) -> None:
    readers: set[str] = set()

    def ready() -> Iterator[str]:
        for video in client.list_videos(status="PARSE"):
            readers.add(threading.current_thread().name)
            yield video.video_no

    with client.fetch_transcriptions(ready()) as batch:
        done = {outcome.video_no for outcome in batch}
    assert done == {v.video_no for v in library.videos(status="PARSE")}
    assert len(readers) == 1
    assert next(iter(readers)).startswith("memories-async-input")
    assert _our_threads() == ["memories-async-loop"]


def test_an_async_input_is_read_on_the_loop(client: SyncMemoriesClient) -> None:
    class Numbers:
        """An async client's input given straight through (no thread of its own)."""

        def __aiter__(self) -> Numbers:
            self.left = ["VI600000000000000001"]
            return self

        async def __anext__(self) -> str:
            if not self.left:
                raise StopAsyncIteration
            return self.left.pop()

    with client.fetch_transcriptions(Numbers()) as batch:
        assert [o.video_no for o in batch] == ["VI600000000000000001"]
    assert _our_threads() == ["memories-async-loop"]


def test_stopping_a_listing_early(client: SyncMemoriesClient) -> None:
    videos = client.list_videos(page_size=2)
    first = next(videos)
    videos.close()
    videos.close()
    assert list(videos) == []
    assert first.video_no
    assert "done" in repr(videos)


# -- ends ------------------------------------------------------------------------------


def test_close_ends_the_loop_thread_and_the_open_batches(
    server: FakeServer, library: FakeLibrary
) -> None:
    client = SyncMemoriesClient(api_key=server.api_key, base_url=server.url)
    batch = client.fetch_transcriptions([_hung(library)])
    batch.__enter__()
    _wait_until(lambda: server.stats.in_flight == 1)
    client.close()
    client.close()
    assert client.closed
    assert "closed" in repr(client)
    assert _our_threads() == []
    _wait_until(lambda: server.stats.in_flight == 0)
    with pytest.raises(RuntimeError, match="closed"):
        client.get_metadata("VI600000000000000001")
    with pytest.raises(RuntimeError, match="closed"), client:
        pass
    batch.close()  # already closed with the client


def test_a_listing_left_open_is_closed_with_the_client(server: FakeServer) -> None:
    client = SyncMemoriesClient(api_key=server.api_key, base_url=server.url)
    videos = client.list_videos(page_size=1)
    next(videos)
    client.close()
    videos.close()
    assert _our_threads() == []


def test_a_client_that_cannot_be_made_leaves_no_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEMORIES_API_KEY", raising=False)
    with pytest.raises(ConfigError):
        SyncMemoriesClient(base_url="http://127.0.0.1:9")
    assert _our_threads() == []


@pytest.mark.usefixtures("sigint")
def test_ctrl_c_during_a_call_cancels_it_on_the_loop(
    server: FakeServer, library: FakeLibrary
) -> None:
    hung = _hung(library)

    def interrupt() -> None:
        _wait_until(lambda: server.stats.in_flight == 1)
        _ctrl_c()

    interrupter = threading.Thread(target=interrupt)
    with SyncMemoriesClient(api_key=server.api_key, base_url=server.url) as client:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            client.get_transcription(hung)
        interrupter.join()
        # Cancelled on the loop, not only abandoned: its request ends before close().
        _wait_until(lambda: server.stats.in_flight == 0)
        assert client.get_metadata(_numbers(library)[0]) is not None
    assert _our_threads() == []


@pytest.mark.usefixtures("sigint")
def test_ctrl_c_in_a_batch_then_leaving_the_blocks(
    server: FakeServer, library: FakeLibrary
) -> None:
    def interrupt() -> None:
        _wait_until(lambda: server.stats.in_flight == 1)
        _ctrl_c()

    interrupter = threading.Thread(target=interrupt)
    with pytest.raises(KeyboardInterrupt):
        with SyncMemoriesClient(api_key=server.api_key, base_url=server.url) as client:
            with client.fetch_transcriptions([_hung(library)]) as batch:
                interrupter.start()
                next(batch)
    interrupter.join()
    assert _our_threads() == []
    _wait_until(lambda: server.stats.in_flight == 0)


@pytest.mark.asyncio
async def test_it_works_where_an_event_loop_runs_already(server: FakeServer) -> None:
    """As in a notebook: the calling thread's loop is not the client's."""
    assert asyncio.get_running_loop() is not None
    with SyncMemoriesClient(api_key=DEFAULT_API_KEY, base_url=server.url) as client:
        assert client.list_unique_ids() == ("default",)
    assert _our_threads() == []


def test_a_view_shares_the_loop_and_owns_nothing(
    client: SyncMemoriesClient, library: FakeLibrary
) -> None:
    number = _numbers(library)[0]
    patient = client.with_options(timeout=120, retry=RetryPolicy(attempts=9))
    assert patient.config.timeout == 120
    assert patient.config.retry.attempts == 9
    assert client.config.retry.attempts != 9
    assert patient.get_transcription(number).video_no == number
    with patient:
        pass  # closing a view closes nothing
    assert not patient.closed
    assert client.get_transcription(number).video_no == number
    client.close()
    assert patient.closed
    with pytest.raises(RuntimeError, match="closed"):
        patient.get_transcription(number)
