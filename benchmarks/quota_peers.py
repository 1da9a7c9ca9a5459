"""The hand-written clients the quota benchmark compares the SDK with.

Each runs as its own process, fetches the visual transcript of every id of
``--ids`` once from the benchmark server with aiohttp, writes nothing, and
prints one JSON line of counts on stdout at the end::

    python benchmarks/quota_peers.py --peer tenacity --url http://127.0.0.1:PORT \\
        --api-key-file KEY --ids ids.txt
    python benchmarks/quota_peers.py --peer aiolimiter --rate 5 --url ... --ids ids.txt

``tenacity``
    What most users write: ``asyncio.Semaphore(16)`` around a fetch retried by
    tenacity on ``0429`` with ``wait_random_exponential(multiplier=0.5,
    max=10)`` and no limit on attempts (the semaphore is held while waiting).
``aiolimiter``
    ``aiolimiter.AsyncLimiter(rate, 1)`` paced at the account's known quota
    (``--rate``), the same semaphore, and on ``0429`` a retry after
    ``1 / rate`` seconds (through the limiter again).

Both also treat an HTTP 429 as ``0429``. Any other answer is an error,
counted and not retried. Exit status 0 when every id was fetched, 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ENDPOINT = "/serve/api/v1/get_video_transcription"
CONCURRENCY = 16


class RateLimited(Exception):
    """The server answered ``0429`` (or HTTP 429)."""


class Failed(Exception):
    """Any other unsuccessful answer."""


def read_ids(path: Path) -> list[str]:
    """The ids of ``path``, one a line, blank lines skipped."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class Counts:
    def __init__(self) -> None:
        self.attempts = 0
        self.rate_limited = 0
        self.ok = 0
        self.errors = 0
        self.fetched: dict[str, int] = {}


def _fetcher(
    session: aiohttp.ClientSession, url: str, key: str, counts: Counts
) -> Callable[[str], Awaitable[None]]:
    target = url + ENDPOINT
    headers = {"Authorization": key}

    async def fetch_once(number: str) -> None:
        counts.attempts += 1
        async with session.get(target, params={"video_no": number}, headers=headers) as answer:
            body = await answer.read()
            status = answer.status
        if status == 429:
            counts.rate_limited += 1
            raise RateLimited
        envelope: dict[str, Any] = orjson.loads(body)
        code = envelope.get("code")
        if code == "0429":
            counts.rate_limited += 1
            raise RateLimited
        if code != "0000" or status != 200:
            raise Failed(f"HTTP {status} code {code!r}")
        counts.fetched[number] = counts.fetched.get(number, 0) + 1

    return fetch_once


async def run_tenacity(
    session: aiohttp.ClientSession, url: str, key: str, ids: Sequence[str], counts: Counts
) -> None:
    from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

    fetch_once = _fetcher(session, url, key, counts)
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def fetch(number: str) -> None:
        async with semaphore:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(RateLimited),
                wait=wait_random_exponential(multiplier=0.5, max=10),
                reraise=True,
            ):
                with attempt:
                    await fetch_once(number)

    await _gather(fetch, ids, counts)


async def run_aiolimiter(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    ids: Sequence[str],
    counts: Counts,
    rate: float,
) -> None:
    from aiolimiter import AsyncLimiter

    fetch_once = _fetcher(session, url, key, counts)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    limiter = AsyncLimiter(rate, 1)

    async def fetch(number: str) -> None:
        async with semaphore:
            while True:
                async with limiter:
                    pass
                try:
                    await fetch_once(number)
                except RateLimited:
                    await asyncio.sleep(1 / rate)
                    continue
                return

    await _gather(fetch, ids, counts)


async def _gather(
    fetch: Callable[[str], Awaitable[None]], ids: Sequence[str], counts: Counts
) -> None:
    async def guarded(number: str) -> None:
        try:
            await fetch(number)
        except (TimeoutError, Failed, aiohttp.ClientError, ValueError) as exc:
            counts.errors += 1
            print(f"{number}: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(guarded(number) for number in ids))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    ids = read_ids(args.ids)
    key = args.api_key_file.read_text().splitlines()[0].strip()
    counts = Counts()
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.peer == "tenacity":
            await run_tenacity(session, args.url, key, ids, counts)
        else:
            await run_aiolimiter(session, args.url, key, ids, counts, args.rate)
    elapsed = time.perf_counter() - started
    missing = [n for n in ids if n not in counts.fetched]
    duplicated = [n for n, times in counts.fetched.items() if times > 1]
    return {
        "peer": args.peer,
        "ids": len(ids),
        "fetched": len(counts.fetched),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "attempts": counts.attempts,
        "rate_limited": counts.rate_limited,
        "errors": counts.errors,
        "elapsed_seconds": round(elapsed, 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=("tenacity", "aiolimiter"), required=True)
    parser.add_argument("--url", required=True, help="the benchmark server's base URL")
    parser.add_argument("--api-key-file", type=Path, required=True)
    parser.add_argument("--ids", type=Path, required=True, help="video numbers, one a line")
    parser.add_argument("--rate", type=float, default=5.0, help="aiolimiter: the known quota")
    args = parser.parse_args(argv)
    if not args.rate > 0:
        parser.error("--rate must be > 0")
    summary = asyncio.run(main_async(args))
    print(orjson.dumps(summary).decode(), flush=True)
    return 0 if summary["missing"] == 0 and summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
