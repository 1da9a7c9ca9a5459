"""What OpenTelemetry costs the client: CPU per transcript with and without telemetry.

Each variant fetches the same transcripts with ``MemoriesClient.fetch_transcriptions``
from one benchmark server (started here, in a process of its own, unless ``--url`` is
given) and reports its process's CPU microseconds per transcript::

    python benchmarks/telemetry.py --count 5000 --repeat 7

Variants, each in a fresh process, interleaved ``--repeat`` times in rotating order
(printed: the medians, their ratio to ``blocked``, and the median of the ratios to the
``blocked`` run of the same round, ``paired``):

``blocked``
    ``opentelemetry`` cannot be imported (as without the ``otel`` extra).
``imported``
    ``opentelemetry.trace`` imported (as an application that uses OpenTelemetry has it),
    the client's telemetry switched off by hand: the uninstrumented client in the same
    process, the baseline of the target.
``before`` (with ``--before TREE``)
    ``opentelemetry.trace`` imported, the package taken from ``TREE``: a checkout of
    the client before it had telemetry (``git worktree add /tmp/before 9ffca9e``).
``api``
    ``opentelemetry-api`` imported, no tracer or meter provider configured: the client
    must decide that telemetry is off and cost nothing (the target: within 2 % of
    ``imported``).
``sdk``
    the OpenTelemetry SDK configured: a tracer provider whose batch span processor
    exports to an exporter that drops the spans, and a meter provider with an
    in-memory reader (read once at the end). Informational: what the spans and
    instruments cost when they are on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import payloads
import procs

VARIANTS = ("blocked", "imported", "api", "sdk")
KEY = os.environ.get("MEMORIES_API_KEY", "sk-test-fake-key")
HERE = Path(__file__).resolve().parent


def _setup(variant: str) -> Any:
    """Prepare the process for ``variant``; returns what the client needs, if anything."""
    if variant == "blocked":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
        return None
    import opentelemetry.trace  # noqa: F401 - imported, as an application would have it

    if variant == "before":
        # The package of another tree (a checkout of the release before telemetry).
        sys.path.insert(0, os.environ["MEMORIES_BENCH_BEFORE"])
        return None

    if variant == "imported":
        from memories_async import _client

        _client.resolve = lambda *_providers: None  # type: ignore[assignment]
        return None
    if variant == "api":
        return None
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    reader = InMemoryMetricReader()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


async def _fetch(url: str, ids: Iterator[str], concurrency: int) -> int:
    from memories_async import MemoriesClient

    done = 0
    async with (
        MemoriesClient(api_key=KEY, base_url=url) as client,
        client.fetch_transcriptions(ids, max_concurrency=concurrency) as batch,
    ):
        async for outcome in batch:
            done += outcome.ok
    return done


def _child(args: argparse.Namespace) -> None:
    reader = _setup(args.variant)
    import aiohttp  # noqa: F401 - imported before the measured loop

    import memories_async

    # The package loads its modules on first use: load them before the measured loop.
    assert memories_async.MemoriesClient is not None

    ids = payloads.video_nos(args.count)
    cpu = time.process_time()
    done = asyncio.run(_fetch(args.url, ids, args.concurrency))
    if reader is not None:
        reader.get_metrics_data()
    cpu = time.process_time() - cpu
    telemetry = "opentelemetry" in sys.modules and sys.modules["opentelemetry"] is not None
    print(json.dumps({"variant": args.variant, "done": done, "cpu_us": cpu / done * 1e6,
                      "opentelemetry": telemetry,
                      "package": memories_async.__file__}))  # fmt: skip


def _run(args: argparse.Namespace, url: str, variants: list[str]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {v: [] for v in variants}
    for round_ in range(args.repeat):
        # Rotate the order, so that no variant always runs first (or after another).
        shift = round_ % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            out = subprocess.run(
                [sys.executable, str(Path(__file__)), "--url", url, "--count", str(args.count),
                 "--concurrency", str(args.concurrency), "--variant", variant],
                check=True,
                capture_output=True,
                text=True,
            ).stdout  # fmt: skip
            record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            before = os.environ.get("MEMORIES_BENCH_BEFORE")
            if variant == "before" and not record["package"].startswith(str(before)):
                raise RuntimeError(f"'before' imported {record['package']}, not from {before}")
            if record["done"] != args.count:
                raise RuntimeError(f"{variant}: {record['done']} of {args.count} fetched")
            results[variant].append(record["cpu_us"])
    return results


def main(argv: list[str] | None = None) -> int:
    """Run every variant ``--repeat`` times in fresh processes and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running benchmark server (default: start one)")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--segments", type=int, default=payloads.SIZES["typical"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument(
        "--before", type=Path, help="a tree holding the package before telemetry: adds 'before'"
    )
    args = parser.parse_args(argv)
    if args.variant:
        _child(args)
        return 0
    variants = [v for v in args.variants.split(",") if v]
    if args.before is not None:
        os.environ["MEMORIES_BENCH_BEFORE"] = str(args.before.resolve())
        variants = ["before", *(v for v in variants if v != "before")]
    elif "before" in variants:
        parser.error("the variant 'before' needs --before TREE")
    server = [sys.executable, str(HERE / "fake_server.py"), "--videos", str(args.count),
              "--segments", str(args.segments)]  # fmt: skip
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(procs.running_server(server))
        results = _run(args, url, variants)
    first = results[variants[0]]
    base = statistics.median(first)
    print(f"{'variant':<10} {'CPU us/transcript':>18} {'x ' + variants[0]:>10} {'paired':>8}  runs")
    for variant in variants:
        runs = results[variant]
        median = statistics.median(runs)
        # The median of the ratios within each round: the machine's drift cancels out.
        paired = statistics.median(run / ref for run, ref in zip(runs, first, strict=True))
        shown = " ".join(f"{run:.0f}" for run in runs)
        print(f"{variant:<10} {median:>18.1f} {median / base:>10.3f} {paired:>8.3f}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
