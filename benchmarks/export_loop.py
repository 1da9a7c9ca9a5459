"""The hand-written floor of an export: aiohttp, a semaphore, orjson, one JSONL file.

``python benchmarks/export_loop.py URL KEY IDS OUT CONCURRENCY``: fetch the visual
transcript of every id of the file IDS and write one JSON line per transcript to OUT, as
a user would write it by hand (no resume, no ledger, no retries, no fsync). It is what
``benchmarks/export.py`` compares the ``memories-async export`` command against.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, BinaryIO

import aiohttp
import orjson

ENDPOINT = "/serve/api/v1/get_video_transcription"


def record(number: str, data: Any) -> bytes:
    segments = [
        {
            "index": int(s["index"]),
            "start": float(s["startTime"]),
            "end": float(s["endTime"]),
            "text": s["content"],
        }
        for s in (data or {}).get("transcriptions") or ()
    ]
    return orjson.dumps({"video_no": number, "kind": "visual", "segments": segments}) + b"\n"


async def main(numbers: list[str], url: str, key: str, out: BinaryIO, concurrency: int) -> int:
    semaphore = asyncio.Semaphore(concurrency)
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(number: str) -> None:
            nonlocal errors
            try:
                async with session.get(
                    url + ENDPOINT, params={"video_no": number}, headers={"Authorization": key}
                ) as response:
                    envelope = orjson.loads(await response.read())
                if envelope.get("code") == "0000":
                    out.write(record(number, envelope.get("data")))
                else:
                    errors += 1
            finally:
                semaphore.release()

        tasks = set()
        for number in numbers:
            await semaphore.acquire()
            task = asyncio.create_task(fetch(number))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    return 1 if errors else 0


if __name__ == "__main__":
    url, key, ids_path, out_path, concurrency = sys.argv[1:6]
    with open(ids_path, encoding="ascii") as ids:
        numbers = [line.strip() for line in ids if line.strip()]
    with open(out_path, "wb") as out:
        sys.exit(asyncio.run(main(numbers, url, key, out, int(concurrency))))
