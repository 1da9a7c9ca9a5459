"""The benchmark server: the project's fake memories.ai API over benchmark payloads.

Run as its own process by ``run.py`` so that its CPU time is never counted as
a client's::

    python benchmarks/fake_server.py --videos 2000 --segments 50 --latency 0.05

The first line printed on stdout is the base URL. The library holds
``--videos`` private videos numbered by :func:`payloads.video_no`, every one
in status ``PARSE`` with an explicit ``--segments``-segment visual transcript
(:func:`payloads.segments`), so every client of a run reads the same answers.

Two extra routes serve the orchestrator: ``GET /_bench/stats`` (requests
received, ``0429`` answers, answer codes) and ``POST /_bench/reset`` (zero
the counters and refill the rate-limit buckets). ``POST /_bench/warm`` renders
and caches every answer body before the measured runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import aiohttp
import orjson
import payloads
from aiohttp import web

from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeVideo,
    Latency,
    RateLimits,
)


def build_library(videos: int, segments: int) -> FakeLibrary:
    """``videos`` ready videos whose visual transcripts hold ``segments`` segments each."""
    variants = [
        tuple(FakeSegment(s, e, t) for s, e, t in payloads.segments(segments, variant=v))
        for v in range(payloads.VARIANTS)
    ]
    return FakeLibrary(
        FakeVideo(
            payloads.video_no(n),
            duration=max(60, variants[n % payloads.VARIANTS][-1].end if segments else 60),
            visual=variants[n % payloads.VARIANTS],
        )
        for n in range(videos)
    )


def build_server(
    *, videos: int, segments: int, latency: float, qps: float | None, seed: int = 0
) -> FakeServer:
    """A fake server over :func:`build_library`, with the bench routes added."""
    server = FakeServer(
        build_library(videos, segments),
        latency=Latency.fixed(latency) if latency > 0 else Latency.none(),
        rate_limits=RateLimits(qps=qps),
        seed=seed,
        cache_bytes=1024 * 2**20,
    )

    async def stats(_request: web.Request) -> web.Response:
        s = server.stats
        body = {
            "total_requests": s.total_requests,
            "rate_limited": s.rate_limited,
            "codes": dict(s.codes),
            "peak_in_flight": s.peak_in_flight,
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        server.reset()
        return web.Response(text="ok")

    async def warm(_request: web.Request) -> web.Response:
        # Render every body once, so no measured run pays for the cold cache.
        saved, server.latency = server.latency, Latency.none()
        limits, server.rate_limits = server.rate_limits, RateLimits()
        try:
            async with aiohttp.ClientSession() as session:
                headers = {"Authorization": server.api_key}
                url = f"{server.url}/serve/api/v1/get_video_transcription"

                async def fetch(n: int) -> None:
                    params = {"video_no": payloads.video_no(n)}
                    async with session.get(url, params=params, headers=headers) as answer:
                        await answer.read()

                for first in range(0, videos, 32):
                    await asyncio.gather(*(fetch(n) for n in range(first, min(videos, first + 32))))
        finally:
            server.latency = saved
            server.rate_limits = limits
            server.reset()
        return web.Response(text="ok")

    server.app.router.add_get("/_bench/stats", stats)
    server.app.router.add_post("/_bench/reset", reset)
    server.app.router.add_post("/_bench/warm", warm)
    return server


async def _serve(server: FakeServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, then serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=payloads.SIZES["typical"])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--qps", type=float, default=None, help="rate limit (default: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = build_server(
        videos=args.videos,
        segments=args.segments,
        latency=args.latency,
        qps=args.qps,
        seed=args.seed,
    )
    asyncio.run(_serve(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
