"""Where the SDK's CPU goes: the floor, then the SDK's layers added one at a time.

Each variant fetches the same transcripts from a running benchmark server with
the same concurrency and reports process CPU microseconds per transcript::

    python benchmarks/fake_server.py --videos 20000 --segments 50 &   # prints URL
    python benchmarks/ablation.py --url http://127.0.0.1:PORT --count 20000

Variants, each adding one layer of the SDK to the previous one:

``floor``
    aiohttp + orjson + tuples (``clients.run_aiohttp``).
``+converter``
    the floor's loop, decoding with ``_protocol.parse_response`` and
    ``_converter.structure_transcript`` (frozen attrs segments).
``+transport``
    the same, sending through ``_transport.Transport.send`` with a
    ``_protocol.get_request`` (per-request timeout, SDK headers, params).
``+client``
    the floor's semaphore loop around ``MemoriesClient.get_transcription``
    (video-number check, governor, retry loop); the tables of analysis.md name
    it by its earlier name, ``fetch_transcript``, a call of the same depth.
``batch``
    ``MemoriesClient.fetch_transcriptions`` (feeder, queues, outcomes).

Each variant runs in its own process, ``--repeat`` times, interleaved; the
median is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import clients
import payloads

VARIANTS = ("floor", "+converter", "+transport", "+client", "batch")
KEY = os.environ.get("MEMORIES_API_KEY", "sk-test-fake-key")


async def _semaphore_loop(
    ids: Iterator[str], concurrency: int, fetch: Callable[[str], Awaitable[int]]
) -> int:
    semaphore = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    done = 0

    async def one(number: str) -> None:
        nonlocal done
        try:
            await fetch(number)
            done += 1
        finally:
            semaphore.release()

    for number in ids:
        await semaphore.acquire()
        task = asyncio.create_task(one(number))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return done


async def _variant(name: str, url: str, ids: Iterator[str], concurrency: int) -> int:
    import aiohttp

    from memories_async import MemoriesClient, TranscriptKind
    from memories_async import _protocol as protocol
    from memories_async._converter import structure_transcript
    from memories_async._transport import Transport, new_session

    target = url + clients.ENDPOINT
    endpoint = protocol.VIDEO_TRANSCRIPTION
    if name == "floor":
        tally = clients.Tally(keep_latencies=False)
        await clients.run_aiohttp(url, KEY, ids, concurrency, tally, clients.Meter(), naive=False)
        return tally.ok
    if name == "+converter":
        headers = {"Authorization": KEY}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def convert(number: str) -> int:
                async with session.get(
                    target, params={"video_no": number}, headers=headers
                ) as response:
                    body = await response.read()
                data = protocol.parse_response(
                    response.status, response.headers, body, endpoint=endpoint, video_no=number
                )
                transcript = structure_transcript(data, video_no=number, kind=TranscriptKind.VISUAL)
                return len(transcript.segments)

            return await _semaphore_loop(ids, concurrency, convert)
    if name == "+transport":
        headers = protocol.build_headers(KEY, "memories-async")
        session = new_session(max_connections=max(64, concurrency), connect_timeout=10.0)
        transport = Transport(session, owns_session=True, timeout=60.0, connect_timeout=10.0)
        full = protocol.api_url(url, endpoint)
        try:

            async def send(number: str) -> int:
                request = protocol.get_request(
                    full, endpoint, headers, params={"video_no": number}, video_no=number
                )
                response = await transport.send(request)
                data = protocol.parse_response(
                    response.status,
                    response.headers,
                    response.body,
                    endpoint=endpoint,
                    video_no=number,
                )
                transcript = structure_transcript(data, video_no=number, kind=TranscriptKind.VISUAL)
                return len(transcript.segments)

            return await _semaphore_loop(ids, concurrency, send)
        finally:
            await transport.aclose()
    async with MemoriesClient(api_key=KEY, base_url=url) as client:
        if name == "+client":

            async def call(number: str) -> int:
                transcript = await client.get_transcription(number)
                return len(transcript.segments)

            return await _semaphore_loop(ids, concurrency, call)
        done = 0
        async with client.fetch_transcriptions(ids, max_concurrency=concurrency) as batch:
            async for outcome in batch:
                done += outcome.ok
        return done


def _child(args: argparse.Namespace) -> None:
    import aiohttp  # noqa: F401 - imported before the measured loop

    import memories_async  # noqa: F401

    ids = payloads.video_nos(args.count)
    cpu = time.process_time()
    done = asyncio.run(_variant(args.variant, args.url, ids, args.concurrency))
    cpu = time.process_time() - cpu
    print(json.dumps({"variant": args.variant, "done": done, "cpu_us": cpu / done * 1e6}))


def main(argv: list[str] | None = None) -> int:
    """Run every variant ``--repeat`` times in fresh processes and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        _child(args)
        return 0
    chosen = [v for v in args.variants.split(",") if v]
    results: dict[str, list[float]] = {v: [] for v in chosen}
    for _ in range(args.repeat):
        for variant in chosen:
            out = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__)),
                    "--url",
                    args.url,
                    "--count",
                    str(args.count),
                    "--concurrency",
                    str(args.concurrency),
                    "--variant",
                    variant,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            results[variant].append(record["cpu_us"])
    floor = statistics.median(results[chosen[0]])
    print(f"{'variant':<12} {'CPU us/transcript':>18} {'x ' + chosen[0]:>10}")
    for variant in chosen:
        median = statistics.median(results[variant])
        print(f"{variant:<12} {median:>18.1f} {median / floor:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
