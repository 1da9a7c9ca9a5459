"""Decode-and-structure micro-benchmark: the SDK's converter against pydantic v2 and msgspec.

Each decoder turns the same answer bytes (live wire shape: string codes,
``startTime``/``endTime`` as strings of whole seconds) into an immutable
transcript model holding the video number and segments of ``index``, float
``start``/``end`` and ``text``, after checking that ``code`` is ``"0000"``:

``sdk``
    what the client does per answer: ``_protocol.parse_response`` (``orjson.loads``
    and the envelope checks) then ``_converter.structure_transcript``.
``pydantic``
    ``Envelope.model_validate_json(body)`` on frozen ``BaseModel`` classes
    with aliases, lax mode (numeric strings become floats).
``msgspec``
    ``msgspec.json.Decoder(Envelope, strict=False).decode(body)`` on frozen
    ``Struct`` classes with renamed fields.
``orjson+tuples``
    for reference: ``orjson.loads`` and a list of tuples, as the aiohttp floor
    does; no model, no validation beyond ``float()``.

Run ``python benchmarks/microbench.py`` to print a table, or let ``run.py``
include it in the report. Every decoder's output is checked to be equivalent
before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
import payloads
import pydantic

from memories_async import TranscriptKind
from memories_async import _protocol as protocol
from memories_async._converter import structure_transcript

# -- pydantic v2 models ------------------------------------------------------------------


class PSegment(pydantic.BaseModel):
    """A segment, read from the live shape through aliases."""

    model_config = pydantic.ConfigDict(frozen=True)

    index: int
    start: float = pydantic.Field(alias="startTime")
    end: float = pydantic.Field(alias="endTime")
    text: str = pydantic.Field(alias="content")


class PTranscript(pydantic.BaseModel):
    """A transcript's ``data``."""

    model_config = pydantic.ConfigDict(frozen=True)

    video_no: str = pydantic.Field(alias="videoNo")
    segments: tuple[PSegment, ...] = pydantic.Field(alias="transcriptions", default=())


class PEnvelope(pydantic.BaseModel):
    """The answer envelope."""

    model_config = pydantic.ConfigDict(frozen=True)

    code: str
    msg: str = ""
    data: PTranscript | None = None


# -- msgspec structs ------------------------------------------------------------------


class MSegment(msgspec.Struct, frozen=True, gc=False):
    """A segment, read from the live shape through renamed fields."""

    index: int
    start: float = msgspec.field(name="startTime")
    end: float = msgspec.field(name="endTime")
    text: str = msgspec.field(name="content")


class MTranscript(msgspec.Struct, frozen=True):
    """A transcript's ``data``."""

    video_no: str = msgspec.field(name="videoNo")
    segments: tuple[MSegment, ...] = msgspec.field(name="transcriptions", default=())


class MEnvelope(msgspec.Struct, frozen=True):
    """The answer envelope."""

    code: str
    msg: str = ""
    data: MTranscript | None = None


_MSGSPEC = msgspec.json.Decoder(MEnvelope, strict=False)

Canonical = tuple[str, tuple[tuple[int, float, float, str], ...]]


def decode_sdk(body: bytes) -> Any:
    """The SDK's per-answer work."""
    data = protocol.parse_response(200, {}, body, endpoint=protocol.VIDEO_TRANSCRIPTION)
    return structure_transcript(data, video_no="VI0", kind=TranscriptKind.VISUAL)


def decode_pydantic(body: bytes) -> Any:
    """pydantic v2, JSON parsed and validated in one call."""
    envelope = PEnvelope.model_validate_json(body)
    if envelope.code != "0000":
        raise ValueError(envelope.code)
    return envelope.data


def decode_msgspec(body: bytes) -> Any:
    """msgspec, JSON parsed and validated in one call."""
    envelope = _MSGSPEC.decode(body)
    if envelope.code != "0000":
        raise ValueError(envelope.code)
    return envelope.data


def decode_tuples(body: bytes) -> Any:
    """The aiohttp floor's work: orjson and tuples."""
    envelope = orjson.loads(body)
    if envelope.get("code") != "0000":
        raise ValueError(envelope.get("code"))
    data = envelope["data"]
    return (
        data["videoNo"],
        [
            (int(s["index"]), float(s["startTime"]), float(s["endTime"]), s["content"])
            for s in data["transcriptions"]
        ],
    )


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "sdk": decode_sdk,
    "pydantic": decode_pydantic,
    "msgspec": decode_msgspec,
    "orjson+tuples": decode_tuples,
}


def canonical(result: Any) -> Canonical:
    """The decoded transcript as plain tuples, to check that decoders agree."""
    if isinstance(result, tuple):
        number, rows = result
        return number, tuple(rows)
    return result.video_no, tuple((s.index, s.start, s.end, s.text) for s in result.segments)


def check_equivalent(body: bytes) -> None:
    """Raise ``AssertionError`` unless every decoder reads ``body`` the same way."""
    expected = canonical(decode_tuples(body))
    for name, decode in DECODERS.items():
        got = canonical(decode(body))
        if got != expected:
            raise AssertionError(f"{name} decodes differently from orjson+tuples")
        if not all(isinstance(s[1], float) and isinstance(s[2], float) for s in got[1]):
            raise AssertionError(f"{name} does not give float times")


def time_call(decode: Callable[[bytes], Any], body: bytes, *, budget: float) -> float:
    """Best-of-5 microseconds per call, each repetition lasting about ``budget / 5`` seconds."""
    timer = timeit.Timer(lambda: decode(body))
    number, elapsed = timer.autorange()
    number = max(1, int(number * (budget / 5) / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def run(*, quick: bool = False) -> dict[str, Any]:
    """Time every decoder on every payload size; return the raw results."""
    budget = 0.2 if quick else 1.0
    results: list[dict[str, Any]] = []
    for size, count in payloads.SIZES.items():
        body = payloads.transcript_body(payloads.video_no(0), count)
        check_equivalent(body)
        for name, decode in DECODERS.items():
            microseconds = time_call(decode, body, budget=budget)
            results.append(
                {
                    "payload": size,
                    "segments": count,
                    "bytes": len(body),
                    "decoder": name,
                    "us_per_call": microseconds,
                    "ns_per_segment": microseconds * 1000 / count,
                }
            )
    return {
        "results": results,
        "versions": {
            "pydantic": pydantic.VERSION,
            "msgspec": msgspec.__version__,
            "orjson": orjson.__version__,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Print the micro-benchmark as a table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = run(quick=args.quick)
    if args.json:
        print(json.dumps(data))
        return 0
    pydantic_us = {
        r["payload"]: r["us_per_call"] for r in data["results"] if r["decoder"] == "pydantic"
    }
    print(f"{'payload':<8} {'decoder':<14} {'us/call':>9} {'x pydantic':>11}")
    for r in data["results"]:
        ratio = r["us_per_call"] / pydantic_us[r["payload"]]
        print(f"{r['payload']:<8} {r['decoder']:<14} {r['us_per_call']:>9.1f} {ratio:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
