"""Run a fake memories.ai server until interrupted: ``python -m memories_async.testing --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memories_async.testing._server import FakeServer, run_fake_server
from memories_async.testing._settings import FaultKind, TranscriptShape


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memories_async.testing",
        description="Serve a fake memories.ai API on 127.0.0.1 until Ctrl+C or SIGTERM. "
        "The first line printed is the base URL.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: 0)")
    add("--videos", type=int, default=1000, help="private videos to generate (default: 1000)")
    add("--public-videos", type=int, default=10, help="public PI- videos (default: 10)")
    add(
        "--unique-ids",
        default="default",
        help="comma-separated namespaces the videos are spread over (default: default)",
    )
    add("--seed", type=int, default=0, help="seed of the library and of random draws")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted key, repeatable (default: sk-test-fake-key)",
    )
    add(
        "--qps",
        type=float,
        default=None,
        help="rate limit of every endpoint, or with --strict the account's transcription "
        "quota (default: none; 5 with --strict)",
    )
    add(
        "--strict",
        action="store_true",
        help="strict account-wide limits: one bucket for every transcription endpoint "
        "(--qps), list_videos 5 and get_metadata 1 QPS, no burst",
    )
    add(
        "--burst",
        type=float,
        default=None,
        metavar="N",
        help="tokens per bucket (default: the qps, or 1 with --strict)",
    )
    add(
        "--neighbour-qps",
        type=float,
        default=None,
        metavar="QPS",
        help="with --strict, another client of the account consuming QPS of the "
        "transcription quota (default: none)",
    )
    add("--http-429", action="store_true", help="rate limit with HTTP 429, not 200 + 0429")
    add("--retry-after", action="store_true", help="send Retry-After on rate-limit answers")
    add("--latency", type=float, default=0.0, help="mean latency in seconds (default: 0)")
    add(
        "--latency-distribution",
        choices=("fixed", "uniform", "lognormal"),
        default="fixed",
        help="shape of the latency (default: fixed)",
    )
    add("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    add(
        "--fault-kinds",
        default=None,
        help="comma-separated kinds to draw from: " + ", ".join(kind.value for kind in FaultKind),
    )
    add("--hang-seconds", type=float, default=3600.0, help="how long a 'hang' fault waits")
    add(
        "--transcript-shape",
        choices=[shape.value for shape in TranscriptShape],
        default=TranscriptShape.LIVE.value,
        help="transcript field names and types (default: live)",
    )
    add("--extra-fields", action="store_true", help="add unknown fields a client must ignore")
    return parser


def _announce(server: FakeServer) -> None:
    print(server.url, flush=True)
    print(
        f"api key: {server.api_key}  ({len(server.library)} videos; Ctrl+C to stop)",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    kinds = None
    if args.fault_kinds:
        kinds = [part.strip() for part in args.fault_kinds.split(",") if part.strip()]
    try:
        run_fake_server(
            host=args.host,
            port=args.port,
            videos=args.videos,
            public_videos=args.public_videos,
            unique_ids=[part for part in args.unique_ids.split(",") if part],
            seed=args.seed,
            api_keys=args.api_keys,
            qps=args.qps,
            strict=args.strict,
            burst=args.burst,
            neighbour_qps=args.neighbour_qps,
            http_429=args.http_429,
            retry_after=args.retry_after,
            latency=args.latency,
            latency_distribution=args.latency_distribution,
            fault_rate=args.fault_rate,
            fault_kinds=kinds,
            hang_seconds=args.hang_seconds,
            transcript_shape=args.transcript_shape,
            extra_fields=args.extra_fields,
            on_ready=_announce,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
