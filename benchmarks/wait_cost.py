"""What waiting for videos still being processed costs, in requests per ready video.

Against the fake server on 127.0.0.1: ``--videos`` videos finish processing at times spread
evenly over ``--spread`` seconds; each way of waiting is measured on a fresh server, as
the requests it received, divided by the number of videos:

* ``batch wait=True``: ``fetch_transcriptions(..., wait=True, poll=P)``, which polls the
  videos waited for together, one ``list_videos`` request per 200 every ``P`` seconds;
* ``get_metadata every P``: one ``wait_until_ready``-like loop per video asking
  ``get_metadata`` every ``P`` seconds, what a user polling by hand does;
* ``wait_until_ready``: the client's ``wait_until_ready`` (``get_metadata``, backing off
  from ``P`` by x1.5 up to a minute) per video, then its transcript;
* ``no wait, lookups``: a batch without ``wait`` over videos none of which is ready: the
  status lookups of the empty answers.

What matters is the ratio of the spread to the poll interval (``spread / poll`` polls in
all): the defaults, 3 s and 0.05 s, stand for videos finishing over 10 minutes polled
every 10 seconds. Run: ``python benchmarks/wait_cost.py [--videos N]``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from memories_async import MemoriesClient, RetryPolicy
from memories_async.testing import Endpoint, FakeLibrary, FakeServer


def numbers(count: int) -> list[str]:
    return [f"VI9{i:017d}" for i in range(count)]


async def measure(
    name: str,
    count: int,
    spread: float,
    run: Callable[[MemoriesClient, list[str]], Awaitable[None]],
) -> None:
    ids = numbers(count)
    async with FakeServer(FakeLibrary()) as server:
        for i, number in enumerate(ids):
            server.processing(number, ready_after=spread * (i + 1) / count)
        async with MemoriesClient(
            api_key=server.api_key, base_url=server.url, retry=RetryPolicy(backoff=False)
        ) as client:
            await run(client, ids)
        stats = server.stats.requests
        transcripts = stats[Endpoint.VIDEO_TRANSCRIPTION]
        status = stats[Endpoint.LIST_VIDEOS] + stats[Endpoint.GET_METADATA]
        print(
            f"{name:28} videos {count:5}  status requests {status:6}"
            f" ({status / count:7.3f} per video)  transcript requests {transcripts / count:.2f}"
            " per video"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=3.0)
    parser.add_argument("--poll", type=float, default=0.05)
    options = parser.parse_args()
    count, spread, poll = options.videos, options.spread, options.poll

    async def batch_wait(client: MemoriesClient, ids: list[str]) -> None:
        async with client.fetch_transcriptions(
            ids, wait=True, poll=poll, max_concurrency=64
        ) as batch:
            async for outcome in batch:
                assert outcome.ok, outcome

    async def by_hand(client: MemoriesClient, ids: list[str]) -> None:
        async def one(number: str) -> None:
            while True:
                video = await client.get_metadata(number)
                assert video is not None
                if video.status == "PARSE":
                    break
                await asyncio.sleep(poll)
            await client.get_transcription(number)

        await asyncio.gather(*(one(number) for number in ids))

    async def each_waits(client: MemoriesClient, ids: list[str]) -> None:
        async def one(number: str) -> None:
            await client.wait_until_ready(number, poll=poll)
            await client.get_transcription(number)

        await asyncio.gather(*(one(number) for number in ids))

    async def no_wait(client: MemoriesClient, ids: list[str]) -> None:
        await client.gather_transcriptions(ids, max_concurrency=64)

    await measure("batch wait=True", count, spread, batch_wait)
    few = min(count, 200)  # one task per video: fewer, the ratio is the same
    await measure(f"get_metadata every {poll:g}s", few, spread, by_hand)
    await measure("wait_until_ready", few, spread, each_waits)
    await measure("no wait, lookups", count, spread * 1000, no_wait)


if __name__ == "__main__":
    asyncio.run(main())
