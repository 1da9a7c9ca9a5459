"""Deterministic video numbers and transcript payloads shared by every benchmark.

The server process, the client processes and the decode micro-benchmark all
build the same payloads from these functions, so every client of a scenario
reads byte-for-byte the same answers.

Transcripts use the live wire shape (``transcriptions`` of ``index``,
``content``, ``startTime``/``endTime`` as strings of whole seconds) with
captions of realistic length and a mix of ASCII and non-ASCII text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import orjson

SIZES: Final = {"small": 5, "typical": 50, "large": 600}
"""Segments per transcript of each payload size; a 25-minute video gave 596 live."""

VARIANTS: Final = 8
"""Distinct transcripts per size; video ``n`` serves variant ``n % VARIANTS``."""

_BASE: Final = 600_000_000_000_000_000

_PLACES: Final = (
    "Under a rocky overhang",
    "In a crowded kitchen",
    "On a windswept beach",
    "Inside a dim lecture hall",
    "At a night market in Taipei",
    "On the terrace of a café",
    "Beside a frozen lake",
    "Along a busy street in São Paulo",
)
_SCENES: Final = (
    "three people are washing clothes in a stream",
    "a woman in a red jacket is chopping onions",
    "two children chase a ball across the grass",
    "an elderly man reads a newspaper",
    "a chef plates a dessert with great care",
    "the presenter points at a diagram on the whiteboard",
    "a golden retriever shakes off water",
)
_EXTRAS: Final = (
    "",
    ", while music plays in the background",
    ". Text on screen: “Day 3 — Kyoto”",
    ", then the scene cuts to black",
    ". Subtitle: 日本語の字幕",
)


def video_no(n: int, /) -> str:
    """The ``n``-th benchmark video number: ``VI`` and 18 digits."""
    return f"VI{_BASE + n:018d}"


def video_nos(count: int, /, *, start: int = 0) -> Iterator[str]:
    """Yield ``count`` video numbers lazily, from the ``start``-th on."""
    for n in range(start, start + count):
        yield video_no(n)


def segments(count: int, /, *, variant: int = 0) -> list[tuple[int, int, str]]:
    """``count`` rows of ``(start, end, text)`` in whole seconds, deterministic per variant.

    Scenes last 2 to 7 seconds; every 17th segment has ``start == end`` and
    every 11th leaves a one-second gap, as live transcripts do.
    """
    rows: list[tuple[int, int, str]] = []
    cursor = 0
    for i in range(count):
        k = i + 7 * variant
        start = cursor + (1 if k % 11 == 0 else 0)
        end = start if k % 17 == 0 else start + 2 + k % 6
        text = (
            f"{_PLACES[k % len(_PLACES)]}, {_SCENES[(k * 3) % len(_SCENES)]}"
            f"{_EXTRAS[(k * 5) % len(_EXTRAS)]}."
        )
        rows.append((start, end, text))
        cursor = end
    return rows


def transcript_data(number: str, rows: list[tuple[int, int, str]]) -> dict[str, object]:
    """The ``data`` of a live transcription answer for ``rows``."""
    return {
        "videoNo": number,
        "transcriptions": [
            {"index": i, "content": text, "startTime": str(start), "endTime": str(end)}
            for i, (start, end, text) in enumerate(rows)
        ],
    }


def transcript_body(number: str, count: int, *, variant: int = 0) -> bytes:
    """A complete live answer (success envelope) holding a ``count``-segment transcript."""
    return orjson.dumps(
        {
            "code": "0000",
            "msg": "success",
            "data": transcript_data(number, segments(count, variant=variant)),
            "success": True,
            "failed": False,
        }
    )
