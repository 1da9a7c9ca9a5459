"""The benchmark server: the project's fake memories.ai API over benchmark payloads.

Run as its own process by ``run.py`` so that its CPU time is never counted as
a client's::

    python benchmarks/fake_server.py --videos 2000 --segments 50 --latency 0.05

The first line printed on stdout is the base URL. The library holds
``--videos`` private videos numbered by :func:`payloads.video_no`, every one
in status ``PARSE`` with an explicit ``--segments``-segment visual transcript
(:func:`payloads.segments`), so every client of a run reads the same answers.

``--qps`` limits every endpoint with a lenient limiter (bursts of ``--qps``);
``--strict`` applies :meth:`RateLimits.strict` instead: one account-wide
bucket of ``--qps`` (default 5) for every transcription endpoint, no burst
(``--burst`` changes it), and ``--neighbour-qps`` adds a noisy neighbour
consuming that much of it. ``--keys K`` also accepts ``sk-test-fake-key-0``
... ``sk-test-fake-key-<K-1>``, keys of the same account that share every
bucket, so one key per client process tells the processes apart in the
per-key stats; ``--refuse-share P`` refuses a share ``P`` of the requests
with ``0429`` whatever the rate (``FaultRule(FaultKind.RATE_LIMITED,
probability=P)``).

Two extra routes serve the orchestrator: ``GET /_bench/stats`` (requests
received, ``0429`` answers, answer codes, per-key counters, the neighbour's
takes and refusals and, with ``--record-timeline``, the timeline as
``[seconds, endpoint, key, accepted]`` lists) and ``POST /_bench/reset``
(zero the counters, empty the timeline and refill the rate-limit buckets).
``POST /_bench/warm`` renders and caches every answer body before the
measured runs.
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
    FaultKind,
    FaultRule,
    Latency,
    RateLimits,
)

DEFAULT_KEY = "sk-test-fake-key"
"""The key the server always accepts; ``--keys K`` adds ``sk-test-fake-key-0`` ... ``-K-1``."""


def bench_keys(count: int) -> list[str]:
    """The default key and ``count`` extra keys of the same account (sharing every bucket)."""
    return [DEFAULT_KEY, *(f"{DEFAULT_KEY}-{i}" for i in range(count))]


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
    *,
    videos: int,
    segments: int,
    latency: float,
    qps: float | None,
    seed: int = 0,
    strict: bool = False,
    burst: float | None = None,
    neighbour_qps: float | None = None,
    record_timeline: bool = False,
    keys: int = 0,
    refuse_share: float = 0.0,
) -> FakeServer:
    """A fake server over :func:`build_library`, with the bench routes added.

    ``keys`` extra keys of the same account are accepted (see :func:`bench_keys`);
    ``refuse_share`` refuses that share of requests with ``0429`` whatever the rate.
    """
    if keys < 0:
        raise ValueError(f"'keys' must be >= 0, got {keys}")
    faults = (
        [FaultRule(FaultKind.RATE_LIMITED, probability=refuse_share)] if refuse_share > 0 else []
    )
    server = FakeServer(
        build_library(videos, segments),
        api_keys=bench_keys(keys),
        faults=faults,
        latency=Latency.fixed(latency) if latency > 0 else Latency.none(),
        rate_limits=RateLimits.from_options(
            qps=qps, strict=strict, burst=burst, neighbour_qps=neighbour_qps
        ),
        seed=seed,
        cache_bytes=1024 * 2**20,
        record_timeline=record_timeline,
    )

    async def stats(_request: web.Request) -> web.Response:
        s = server.stats
        body = {
            "total_requests": s.total_requests,
            "rate_limited": s.rate_limited,
            "codes": dict(s.codes),
            "peak_in_flight": s.peak_in_flight,
            "requests_by_key": dict(s.requests_by_key),
            "accepted_by_key": dict(s.accepted_by_key),
            "rate_limited_by_key": dict(s.rate_limited_by_key),
            "neighbour_taken": s.neighbour_taken,
            "neighbour_refused": s.neighbour_refused,
            # orjson writes plain tuples, not named ones.
            "timeline": None if s.timeline is None else [tuple(entry) for entry in s.timeline],
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        server.reset()
        return web.Response(text="ok")

    async def warm(_request: web.Request) -> web.Response:
        # Render every body once, so no measured run pays for the cold cache.
        saved, server.latency = server.latency, Latency.none()
        limits, server.rate_limits = server.rate_limits, RateLimits()
        rules, server.faults = server.faults, ()
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
            server.faults = rules
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
    parser.add_argument(
        "--strict",
        action="store_true",
        help="one account-wide transcription bucket of --qps (default 5), no burst",
    )
    parser.add_argument("--burst", type=float, default=None, help="tokens per bucket")
    parser.add_argument(
        "--neighbour-qps", type=float, default=None, help="with --strict, a noisy neighbour"
    )
    parser.add_argument(
        "--record-timeline", action="store_true", help="serve the timeline in /_bench/stats"
    )
    parser.add_argument(
        "--keys",
        type=int,
        default=0,
        help="also accept K keys sk-test-fake-key-0 ... -K-1 of the same account (shared buckets)",
    )
    parser.add_argument(
        "--refuse-share",
        type=float,
        default=0.0,
        help="refuse this share of requests with 0429 whatever the rate (0 to 1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        server = build_server(
            videos=args.videos,
            segments=args.segments,
            latency=args.latency,
            qps=args.qps,
            seed=args.seed,
            strict=args.strict,
            burst=args.burst,
            neighbour_qps=args.neighbour_qps,
            record_timeline=args.record_timeline,
            keys=args.keys,
            refuse_share=args.refuse_share,
        )
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
