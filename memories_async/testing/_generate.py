"""Deterministic generation of fake library metadata and transcripts.

Everything here is a pure function of its arguments: the same seed gives the same
numbers, names, statuses, timings and text on every run and every platform
(``random.Random`` seeded with a string is stable across processes).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

MAX_VIDEOS = 1_000_000
"""Upper bound on generated videos, which keeps numbers at exactly 18 digits."""

_EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_PRIVATE_BASE = 600_000_000_000_000_000
_PUBLIC_BASE = 590_000_000_000_000_000

_STEMS = (
    "holiday_2025_clip",
    "Interview with Zoë",
    "São Paulo street food",
    "lecture-week",
    "family dinner",
    "Münster marathon",
    "product demo",
    "東京 night walk",
    "kitchen test",
    "drone flight",
    "team standup",
    "wedding (final cut)",
    "skate park",
    "board game night",
    "garden time-lapse",
    "Q3 all-hands",
)
_EXTENSIONS = ("mp4", "mp4", "mp4", "mov", "webm")
_RESOLUTIONS = ((1920, 1080), (1280, 720), (3840, 2160), (1080, 1920), (640, 360))
_FPS = (24, 25, 30, 30, 60, 29)
_TAGS = ("travel", "interview", "sports", "cooking", "lecture", "family", "demo", "nature")
_CAUSES = (
    "unsupported codec",
    "video file is corrupted",
    "duration exceeds the limit",
    "download timed out",
)

_PLACES = (
    "Under a rocky overhang",
    "In a crowded kitchen",
    "On a windswept beach",
    "Inside a dim lecture hall",
    "At a night market in Taipei",
    "On the terrace of a café",
    "Beside a frozen lake",
    "In a small recording studio",
    "Along a busy street in São Paulo",
    "In front of the cathedral in Münster",
    "On a rooftop at dusk",
    "In a school gym",
)
_SCENES = (
    "three people are washing clothes in a stream",
    "a woman in a red jacket is chopping onions",
    "two children chase a ball across the grass",
    "an elderly man reads a newspaper",
    "a chef plates a dessert with great care",
    "a group of cyclists rides past",
    "the presenter points at a diagram on the whiteboard",
    "a golden retriever shakes off water",
    "the camera pans slowly across the skyline",
    "a crowd gathers around a street performer",
    "a man adjusts a microphone stand",
    "steam rises from a large pot",
)
_SCENE_EXTRAS = (
    "",
    "",
    "",
    ", while music plays in the background",
    ", and the light slowly fades",
    '. A sign reads "Ausfahrt freihalten"',
    ". Text on screen: “Day 3 — Kyoto”",
    ". An arrow --> points to the exit",
    ", then the scene cuts to black",
    ". Subtitle: 日本語の字幕",
    ". Someone holds up a sign: 'Café & Bäckerei'",
    "\nA second caption line appears at the bottom",
    ". An emoji overlay 🙂 appears",
    ", with the caption <b>LIVE</b>",
)
_SPEECH = (
    " So what we're going to do today is look at the whole process.",
    " Okay, let's get started.",
    " I think, honestly, it was the best trip we've ever had.",
    ' He said, "don\'t touch that," and walked away.',
    " Um, yeah, exactly.",
    " The arrow --> means the next step.",
    " Merci beaucoup, à bientôt !",
    " Danke schön, das war's für heute.",
    " ありがとうございます。",
    " First, preheat the oven to 180 degrees.\n Then mix the flour and the sugar.",
    " Can you hear me? Hello?",
    " Let me, uh, let me check that again.",
    " It costs $4.99, or €5 — cheap, right?",
    " [music]",
    " Zoë, come here!",
    " And that's the end of part one; see you in the next video.",
)


def seeded_random(label: str) -> random.Random:
    """Return a generator seeded from ``label``: the same label, the same draws, everywhere."""
    # Reproducible test data, not secrets: a non-cryptographic generator is the point.
    return random.Random(f"memories-fake:{label}")  # noqa: S311


class MetadataRow(NamedTuple):
    """The generated metadata of one video, in :class:`FakeVideo` field order."""

    video_no: str
    unique_id: str
    status: str
    video_name: str
    duration: int
    size: int
    create_time: int
    fps: int
    width: int
    height: int
    tags: tuple[str, ...]
    cause: str | None
    speech: bool


def metadata(
    seed: int, size: int, public: int, unique_ids: tuple[str, ...]
) -> Iterator[MetadataRow]:
    """Yield ``size`` private then ``public`` public video rows, oldest first."""
    yield from _rows(seeded_random(f"{seed}:private"), size, "VI", unique_ids)
    yield from _rows(seeded_random(f"{seed}:public"), public, "PI-", ("default",))


def _rows(
    rng: random.Random, count: int, prefix: str, unique_ids: tuple[str, ...]
) -> Iterator[MetadataRow]:
    base = _PUBLIC_BASE if prefix == "PI-" else _PRIVATE_BASE
    number = base + rng.randrange(10**16)
    created = _EPOCH_MS + rng.randrange(30 * 86_400_000)
    namespaces = len(unique_ids)
    for index in range(count):
        # Increasing numbers and times; the bounds keep numbers at 18 digits.
        number += rng.randrange(1 << 22, 1 << 36)
        created += rng.randrange(1_000, 300_000)
        bits = rng.getrandbits(64)
        duration = int(5 * 360 ** ((bits & 0xFFFF) / 0xFFFF))
        roll = (bits >> 16) & 0x3FF
        if roll < 880:
            status, cause = "PARSE", None
        elif roll < 940:
            status, cause = "UNPARSE", None
        else:
            status = ("PARSE_ERROR", "FAIL", "FAILED")[roll % 3]
            cause = _CAUSES[roll % len(_CAUSES)]
        speech = ((bits >> 26) & 0xFF) < 224
        look = (bits >> 34) & 0xFF
        width, height = _RESOLUTIONS[look % len(_RESOLUTIONS)]
        fps = _FPS[look % len(_FPS)]
        naming = (bits >> 42) & 0xFFF
        name = (
            f"{_STEMS[naming % len(_STEMS)]}_{index % 1000:03d}"
            f".{_EXTENSIONS[naming % len(_EXTENSIONS)]}"
        )
        extra = (bits >> 54) & 0x3FF
        tags = tuple(_TAGS[(extra + step * 3) % len(_TAGS)] for step in range(extra % 3))
        size = duration * (100_000 + extra * 300)
        yield MetadataRow(
            f"{prefix}{number:018d}",
            unique_ids[index % namespaces],
            status,
            name,
            duration,
            size,
            created,
            fps,
            width,
            height,
            tags,
            cause,
            speech,
        )


def segments(seed: int, video_no: str, kind: str, duration: int) -> list[tuple[int, int, str]]:
    """Return ``(start, end, text)`` rows of one generated transcript.

    Visual transcripts cover the video in 2.5-8 s scenes; audio ones in 3-6 s
    utterances with more silences. Both cap at 600 segments, keep times within
    ``duration``, leave occasional gaps and make ``start == end`` now and then.
    """
    rng = seeded_random(f"{seed}:{video_no}:{kind}")
    visual = kind == "visual"
    mean = rng.uniform(2.5, 8.0) if visual else rng.uniform(3.0, 6.0)
    count = max(1, min(600, round(duration / mean)))
    step = duration / count
    gap_rate = 0.08 if visual else 0.25
    rows: list[tuple[int, int, str]] = []
    cursor = 0
    for _ in range(count):
        roll = rng.random()
        start = cursor + (rng.randint(1, 4) if roll < gap_rate else 0)
        if start > duration:
            break
        length = 0 if roll > 0.97 else max(1, round(step * (0.5 + roll)))
        end = min(duration, start + length)
        rows.append((start, end, _caption(rng) if visual else _speech(rng)))
        cursor = end
    return rows


def _caption(rng: random.Random) -> str:
    place = _PLACES[rng.randrange(len(_PLACES))]
    scene = _SCENES[rng.randrange(len(_SCENES))]
    extra = _SCENE_EXTRAS[rng.randrange(len(_SCENE_EXTRAS))]
    return f"{place}, {scene}{extra}."


def _speech(rng: random.Random) -> str:
    text = _SPEECH[rng.randrange(len(_SPEECH))]
    roll = rng.random()
    if roll < 0.3:
        text += _SPEECH[rng.randrange(len(_SPEECH))]
    elif roll > 0.9:
        # Not every utterance starts with a space.
        text = text.lstrip()
    return text
