"""A client belongs to the event loop that first used it: another loop gets a clear error."""

from __future__ import annotations

import asyncio

import pytest

from memories_async import MemoriesClient
from memories_async.testing import DEFAULT_API_KEY, FakeLibrary, FakeServer, FakeServerThread


def test_a_client_used_from_a_second_event_loop_says_how_to_fix_it() -> None:
    library = FakeLibrary.generate(3, seed=1)
    number = library.videos(status="PARSE")[0].video_no
    with FakeServerThread(FakeServer(library)) as running:
        client = MemoriesClient(api_key=DEFAULT_API_KEY, base_url=running.url)
        first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            first.run_until_complete(client.get_transcription(number))
            with pytest.raises(RuntimeError, match=r"another event loop \(was asyncio.run"):
                second.run_until_complete(client.get_transcription(number))
            with pytest.raises(RuntimeError, match="another event loop"):
                second.run_until_complete(client.aclose())
            first.run_until_complete(client.aclose())  # where its connections live
        finally:
            first.close()
            second.close()
