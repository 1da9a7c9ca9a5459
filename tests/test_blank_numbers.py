"""A blank or whitespace video number is refused before any request, in every entry point.

A single call raises :class:`InvalidVideoNumberError` (a ``ValueError`` too); a batch or
an export turns it into a :class:`Failed` outcome (a failure record) with that error and
no attempt, as one bad video never stops a batch. The fake server counts what reached it:
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from memories_async import (
    Failed,
    FailureRecord,
    InvalidVideoNumberError,
    MemoriesClient,
    export_transcripts,
)
from memories_async.testing import FakeLibrary, FakeServer
from memories_async.testing._pytest_plugin import open_client

pytestmark = pytest.mark.asyncio

BLANKS = ["", "  ", "\t", " \t\n "]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer(FakeLibrary.generate(3, seed=1)) as server:
        yield server


@pytest_asyncio.fixture
async def client(server: FakeServer) -> AsyncIterator[MemoriesClient]:
    async with open_client(server) as opened:  # the plugin's memories_client
        yield opened


def single_calls(client: MemoriesClient, number: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def listing() -> None:
        async for _ in client.list_videos(video_nos=[number]):
            pass  # pragma: no cover - refused before the first page

    return {
        "get_transcription": lambda: client.get_transcription(number),
        "get_transcription audio": lambda: client.get_transcription(number, kind="audio"),
        "get_transcription public": lambda: client.get_transcription(number, public=True),
        "get_metadata": lambda: client.get_metadata(number),
        "list_videos": listing,
    }


@pytest.mark.parametrize("number", BLANKS, ids=repr)
async def test_single_calls_raise_before_any_request(
    server: FakeServer, client: MemoriesClient, number: str
) -> None:
    for name, call in single_calls(client, number).items():
        with pytest.raises(InvalidVideoNumberError, match="empty or blank"):
            await call()
        assert not server.stats.requests, name


@pytest.mark.parametrize("number", BLANKS, ids=repr)
async def test_batches_give_a_failed_outcome_without_a_request(
    server: FakeServer, client: MemoriesClient, number: str
) -> None:
    good = next(iter(server.library)).video_no
    outcomes = await client.gather_transcriptions([number], kind="both")
    async with client.fetch_transcriptions([(number, "audio")]) as batch:
        paired = [outcome async for outcome in batch]
    assert not server.stats.requests
    for outcome in [*outcomes.values(), *paired]:
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, InvalidVideoNumberError)
        assert outcome.attempts == 0
    assert len(outcomes) == 2  # one per kind
    # The good number of the same batch is fetched.
    mixed = await client.gather_transcriptions([number, good])
    assert mixed[good, "visual"].ok
    assert server.stats.requests_by_video == {good: 1}


@pytest.mark.parametrize("number", BLANKS, ids=repr)
async def test_an_export_records_the_failure_without_a_request(
    server: FakeServer, client: MemoriesClient, number: str, tmp_path: Path
) -> None:
    records: list[FailureRecord] = []
    stats = await export_transcripts(
        client, [number], tmp_path / "out.jsonl", on_failure=records.append
    )
    assert not server.stats.requests
    assert stats.failed == 1
    assert stats.exported == 0
    (record,) = records
    assert record.attempts == 0
    assert "empty or blank" in record.message
