"""The four clients under test, each run in a fresh process by ``run.py``.

::

    python benchmarks/clients.py --client sdk --url http://127.0.0.1:PORT \\
        --count 2000 --concurrency 64

prints one JSON object on stdout: what was fetched, the wall time and the
process CPU time (user + system, every thread) of the fetch loop only, the
latency percentiles and the peak RSS. The API key comes from
``MEMORIES_API_KEY``.

Every client fetches ``--count`` distinct video numbers
(:func:`payloads.video_nos`, produced lazily), keeps at most ``--concurrency``
requests in flight, and for each answer does the same work: parse the JSON
envelope, check that ``code`` is ``"0000"``, and build the segments with float
times. The consumer only counts transcripts and segments.

``sdk``
    ``MemoriesClient(...).fetch_transcriptions(ids, max_concurrency=C)`` with
    every other setting at its default (no ``rate``; retries, governor and
    de-duplication on). Segments are the SDK's frozen attrs ``Segment``.
``aiohttp``
    The floor: one ``aiohttp.ClientSession`` (pool of C connections), an
    ``asyncio.Semaphore(C)`` acquired before each task is created, ``orjson``
    for the JSON, segments as ``(index, start, end, text)`` tuples.
``requests``
    ``concurrent.futures.ThreadPoolExecutor(C)``, one ``requests.Session`` per
    thread, ``response.json()``: the style of the API's own examples, with
    connection reuse.
``httpx``
    One ``httpx.AsyncClient`` (pool of C connections), an ``asyncio.Semaphore(C)``
    as for aiohttp, ``response.json()``.

Against a rate-limited server (``--retry-rate-limited``) the peers retry a
``0429`` answer after a fixed 0.1 s sleep, up to 100 attempts: the naive
handling. The SDK uses its own governor and retries, with ``rate=`` when
``--rate`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import payloads

ENDPOINT = "/serve/api/v1/get_video_transcription"
NAIVE_PAUSE = 0.1
"""Seconds a peer sleeps before retrying a rate-limited request."""
NAIVE_ATTEMPTS = 100

Segment = tuple[int, float, float, str]


class Meter:
    """Wall and process CPU time (user + system, every thread) between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.rss_before = 0
        self._wall = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        """Start measuring: the client is built, the fetch loop begins."""
        self.rss_before = peak_rss_bytes()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> None:
        """Stop measuring: every transcript is in, nothing is closed yet."""
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


class Tally:
    """What one client run fetched; shared by every client implementation."""

    def __init__(self, keep_latencies: bool) -> None:
        self.ok = 0
        self.errors = 0
        self.segments = 0
        self.attempts = 0
        self.rate_limited = 0
        self.retries = 0
        self.latencies: list[float] | None = [] if keep_latencies else None

    def success(self, segments: int, latency: float) -> None:
        """Record one transcript of ``segments`` segments fetched in ``latency`` seconds."""
        self.ok += 1
        self.segments += segments
        if self.latencies is not None:
            self.latencies.append(latency)


def build_segments(data: Any) -> list[Segment]:
    """The peers' segment building: tuples with float times, from live ``data``."""
    if not data:
        return []
    return [
        (int(s["index"]), float(s["startTime"]), float(s["endTime"]), s["content"])
        for s in data["transcriptions"]
    ]


# -- the SDK -------------------------------------------------------------------


async def run_sdk(
    url: str,
    key: str,
    ids: Iterator[str],
    concurrency: int,
    tally: Tally,
    meter: Meter,
    *,
    dedupe: bool,
    rate: float | None = None,
) -> dict[str, Any]:
    """Fetch with the SDK's batch engine; returns its own stats for the record."""
    from memories_async import Fetched, MemoriesClient

    async with MemoriesClient(api_key=key, base_url=url, rate=rate) as client:
        meter.start()
        batch = client.fetch_transcriptions(ids, max_concurrency=concurrency, dedupe=dedupe)
        async with batch:
            async for outcome in batch:
                tally.attempts += outcome.attempts
                if isinstance(outcome, Fetched):
                    tally.success(len(outcome.transcript.segments), outcome.elapsed)
                else:
                    tally.errors += 1
            meter.stop()
            stats = batch.stats()
        tally.retries = stats.retries
        tally.rate_limited = stats.rate_limited
        return {
            "sdk_p50": stats.latency_p50,
            "sdk_p95": stats.latency_p95,
            "sdk_p99": stats.latency_p99,
            "governor": repr(client.governor),
        }


# -- aiohttp + orjson: the floor ---------------------------------------------------


async def run_aiohttp(
    url: str,
    key: str,
    ids: Iterator[str],
    concurrency: int,
    tally: Tally,
    meter: Meter,
    *,
    naive: bool,
) -> None:
    """The hand-written floor: aiohttp, a semaphore, orjson, tuples."""
    import aiohttp
    import orjson

    target = url + ENDPOINT
    headers = {"Authorization": key}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession(connector=connector) as session:
        meter.start()

        async def fetch(number: str) -> None:
            try:
                started = time.perf_counter()
                for attempt in range(1, NAIVE_ATTEMPTS + 1):
                    tally.attempts += 1
                    async with session.get(
                        target, params={"video_no": number}, headers=headers
                    ) as response:
                        body = await response.read()
                    envelope = orjson.loads(body)
                    code = envelope.get("code")
                    if code == "0000":
                        segments = build_segments(envelope.get("data"))
                        tally.success(len(segments), time.perf_counter() - started)
                        return
                    if code == "0429" and naive and attempt < NAIVE_ATTEMPTS:
                        tally.rate_limited += 1
                        tally.retries += 1
                        await asyncio.sleep(NAIVE_PAUSE)
                        continue
                    break
                tally.errors += 1
            except (aiohttp.ClientError, ValueError):
                tally.errors += 1
            finally:
                semaphore.release()

        for number in ids:
            await semaphore.acquire()
            task = asyncio.create_task(fetch(number))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        meter.stop()


# -- httpx -----------------------------------------------------------------------


async def run_httpx(
    url: str,
    key: str,
    ids: Iterator[str],
    concurrency: int,
    tally: Tally,
    meter: Meter,
    *,
    naive: bool,
) -> None:
    """httpx.AsyncClient with the same semaphore loop as the floor; ``response.json()``."""
    import httpx

    target = url + ENDPOINT
    headers = {"Authorization": key}
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        meter.start()

        async def fetch(number: str) -> None:
            try:
                started = time.perf_counter()
                for attempt in range(1, NAIVE_ATTEMPTS + 1):
                    tally.attempts += 1
                    response = await client.get(
                        target, params={"video_no": number}, headers=headers
                    )
                    envelope = response.json()
                    code = envelope.get("code")
                    if code == "0000":
                        segments = build_segments(envelope.get("data"))
                        tally.success(len(segments), time.perf_counter() - started)
                        return
                    if code == "0429" and naive and attempt < NAIVE_ATTEMPTS:
                        tally.rate_limited += 1
                        tally.retries += 1
                        await asyncio.sleep(NAIVE_PAUSE)
                        continue
                    break
                tally.errors += 1
            except (httpx.HTTPError, ValueError):
                tally.errors += 1
            finally:
                semaphore.release()

        for number in ids:
            await semaphore.acquire()
            task = asyncio.create_task(fetch(number))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        meter.stop()


# -- requests + threads --------------------------------------------------------------


def run_requests(
    url: str,
    key: str,
    ids: Iterator[str],
    concurrency: int,
    tally: Tally,
    meter: Meter,
    *,
    naive: bool,
) -> None:
    """requests in a thread pool, one session per thread; ``response.json()``."""
    import requests

    target = url + ENDPOINT
    headers = {"Authorization": key}
    local = threading.local()
    lock = threading.Lock()
    sessions: list[requests.Session] = []

    def session() -> requests.Session:
        current: requests.Session | None = getattr(local, "session", None)
        if current is None:
            current = local.session = requests.Session()
            with lock:
                sessions.append(current)
        return current

    def fetch(number: str) -> None:
        started = time.perf_counter()
        http = session()
        try:
            for attempt in range(1, NAIVE_ATTEMPTS + 1):
                response = http.get(target, params={"video_no": number}, headers=headers)
                envelope = response.json()
                code = envelope.get("code")
                with lock:
                    tally.attempts += 1
                    if code == "0000":
                        segments = build_segments(envelope.get("data"))
                        tally.success(len(segments), time.perf_counter() - started)
                        return
                    retry = code == "0429" and naive and attempt < NAIVE_ATTEMPTS
                    if retry:
                        tally.rate_limited += 1
                        tally.retries += 1
                if not retry:
                    break
                time.sleep(NAIVE_PAUSE)
        except (requests.RequestException, ValueError):
            pass
        with lock:
            tally.errors += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        meter.start()
        for _ in pool.map(fetch, ids):
            pass
        meter.stop()
    for each in sessions:
        each.close()


# -- measurement ---------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def peak_rss_bytes() -> int:
    """The peak resident set size of this process, in bytes.

    ``VmHWM`` of ``/proc/self/status`` where available: ``ru_maxrss`` keeps
    the peak of the process before ``exec``, which for a child started by
    ``subprocess`` is the parent's.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run one client as ``args`` say and return the record printed as JSON."""
    key = os.environ.get("MEMORIES_API_KEY", "sk-test-fake-key")
    tally = Tally(keep_latencies=not args.no_latencies)
    ids = payloads.video_nos(args.count, start=args.start)
    extra: dict[str, Any] = {}
    # Imports are not part of the fetch loop.
    for module in IMPORTS[args.client]:
        importlib.import_module(module)
    meter = Meter()
    common = (args.url, key, ids, args.concurrency, tally, meter)
    naive = args.retry_rate_limited
    if args.client == "sdk":
        extra = asyncio.run(run_sdk(*common, dedupe=not args.no_dedupe, rate=args.rate))
    elif args.client == "aiohttp":
        asyncio.run(run_aiohttp(*common, naive=naive))
    elif args.client == "httpx":
        asyncio.run(run_httpx(*common, naive=naive))
    else:
        run_requests(*common, naive=naive)
    wall, cpu = meter.wall, meter.cpu
    peak = peak_rss_bytes()
    latencies = tally.latencies or []
    done = max(tally.ok, 1)
    return {
        "client": args.client,
        "concurrency": args.concurrency,
        "count": args.count,
        "ok": tally.ok,
        "errors": tally.errors,
        "segments": tally.segments,
        "attempts": tally.attempts,
        "retries": tally.retries,
        "rate_limited": tally.rate_limited,
        "wall_s": wall,
        "cpu_s": cpu,
        "throughput": tally.ok / wall if wall > 0 else 0.0,
        "cpu_us_per_transcript": cpu / done * 1e6,
        "p50_ms": _ms(_percentile(latencies, 50)),
        "p95_ms": _ms(_percentile(latencies, 95)),
        "p99_ms": _ms(_percentile(latencies, 99)),
        "peak_rss_mb": peak / 2**20,
        "rss_growth_mb": (peak - meter.rss_before) / 2**20,
        **extra,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


IMPORTS = {
    "sdk": ("memories_async",),
    "aiohttp": ("aiohttp", "orjson"),
    "requests": ("requests",),
    "httpx": ("httpx",),
}

RUNNERS: dict[str, Callable[..., object]] = {
    "sdk": run_sdk,
    "aiohttp": run_aiohttp,
    "requests": run_requests,
    "httpx": run_httpx,
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run one client, print its record as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=sorted(RUNNERS), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--no-dedupe", action="store_true", help="SDK: dedupe=False")
    parser.add_argument("--rate", type=float, default=None, help="SDK: rate= (default: none)")
    parser.add_argument("--no-latencies", action="store_true", help="keep no per-request list")
    parser.add_argument("--retry-rate-limited", action="store_true", help="peers: naive retry")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
