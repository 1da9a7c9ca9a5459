"""Run the concurrency benchmarks and write the report: ``python benchmarks/run.py``.

The fake memories.ai server runs in its own process (``fake_server.py``); each
client run is a fresh process (``clients.py``), so CPU time and peak RSS are
per client and never include the server. Clients of a scenario read the same
payloads from the same server, in an order rotated at every repetition; the
report gives medians over repetitions and ratios to the hand-written aiohttp
loop, which hold better than absolute numbers on a shared, noisy machine.

Scenarios (``--scenarios``, comma-separated; all by default):

``latency``  50 ms per request server-side, concurrency 1 to 256, four clients
``cpu``      no latency, concurrency 16 and 64, four clients
``large``    about 600 segments per transcript, no latency, four clients
``rate``     the server limits to a fixed QPS; the SDK's governor against naive retries
``memory``   1k to 100k ids streamed through the SDK: peak RSS
``micro``    decode and structure one answer: SDK converter, pydantic v2, msgspec

``--quick`` runs a reduced set in about a minute and writes under
``benchmarks/.quick/`` unless ``--out`` is given; the full run writes
``docs/benchmarks.md`` and ``docs/benchmarks/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import machine
import microbench
import procs
import report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
API_KEY = "sk-test-fake-key"
CLIENTS = ("sdk", "aiohttp", "requests", "httpx")
SCENARIOS = ("latency", "cpu", "large", "rate", "memory", "micro")
LATENCY = 0.05
CLIENT_TIMEOUT = 600.0


@dataclass(frozen=True)
class ServerSpec:
    """How to start the benchmark server for one scenario."""

    videos: int
    segments: int
    latency: float = 0.0
    qps: float | None = None
    warm: bool = True

    def argv(self) -> list[str]:
        """The command line of ``fake_server.py``."""
        args = procs.server_argv(self.videos, self.segments, self.latency)
        if self.qps is not None:
            args += ["--qps", str(self.qps)]
        return args


@dataclass(frozen=True)
class RunSpec:
    """One client run: which client, how many transcripts, how many in flight."""

    client: str
    concurrency: int
    count: int
    flags: tuple[str, ...] = ()
    label: str = ""


@dataclass
class Scenario:
    """A server and the runs made against it, repeated ``repeat`` times."""

    name: str
    title: str
    server: ServerSpec
    runs: list[RunSpec]
    repeat: int
    params: dict[str, Any] = field(default_factory=dict)


def _latency_count(concurrency: int, seconds: float, cap: int) -> int:
    return max(30, min(cap, round(concurrency / LATENCY * seconds)))


def _count(client: str, concurrency: int, count: int) -> int:
    """Requests for one run: httpx gets fewer at high concurrency, where it is 10-50x slower.

    Throughput and CPU per transcript are rates, comparable across counts as long
    as every run keeps its pool busy for many round trips.
    """
    if client == "httpx" and concurrency >= 64:
        return max(4 * concurrency, count // 4)
    if client == "httpx" and concurrency >= 16:
        return count // 2
    return count


def plan(
    names: Sequence[str], *, quick: bool, repeat: int, clients: Sequence[str]
) -> list[Scenario]:
    """The scenarios to run, scaled down with ``quick``."""
    scenarios: list[Scenario] = []
    typical = 50
    levels: tuple[int, ...]
    if "latency" in names:
        levels = (1, 16, 64) if quick else (1, 4, 16, 64, 256)
        seconds, cap = (0.8, 1000) if quick else (1.5, 3000)
        runs = [
            RunSpec(c, level, _count(c, level, _latency_count(level, seconds, cap)))
            for level in levels
            for c in clients
        ]
        scenarios.append(
            Scenario(
                "latency",
                f"Latency-bound: {LATENCY * 1000:.0f} ms per request, {typical} segments",
                ServerSpec(max(r.count for r in runs), typical, latency=LATENCY),
                runs,
                repeat,
                {"latency_s": LATENCY, "segments": typical, "levels": list(levels)},
            )
        )
    if "cpu" in names:
        count = 1000 if quick else 4000
        levels = (64,) if quick else (16, 64)
        scenarios.append(
            Scenario(
                "cpu",
                f"CPU-bound: no latency, {typical} segments",
                ServerSpec(count, typical),
                [RunSpec(c, level, _count(c, level, count)) for level in levels for c in clients],
                repeat,
                {"segments": typical, "levels": list(levels)},
            )
        )
    if "large" in names:
        count = 200 if quick else 800
        scenarios.append(
            Scenario(
                "large",
                "Large transcripts: 600 segments, no latency, concurrency 16",
                ServerSpec(count, 600),
                [RunSpec(c, 16, _count(c, 16, count)) for c in clients],
                repeat,
                {"segments": 600, "levels": [16]},
            )
        )
    if "rate" in names:
        qps, count = (20.0, 60) if quick else (20.0, 200)
        scenarios.append(
            Scenario(
                "rate",
                f"Rate-limited server: {qps:g} QPS, concurrency 16",
                ServerSpec(count, typical, qps=qps),
                [RunSpec(c, 16, count, ("--retry-rate-limited",)) for c in clients]
                + [RunSpec("sdk", 16, count, ("--rate", f"{qps:g}"), f"rate={qps:g}")],
                1 if quick else min(repeat, 2),
                {"qps": qps, "segments": typical, "levels": [16]},
            )
        )
    if "memory" in names:
        counts = (1000, 10000) if quick else (1000, 10000, 100000)
        runs = [
            RunSpec("sdk", 64, n, (*flags, "--no-latencies"), label)
            for n in counts
            for flags, label in (((), "dedupe on (default)"), (("--no-dedupe",), "dedupe off"))
        ]
        scenarios.append(
            Scenario(
                "memory",
                "Memory against the number of ids (SDK, streamed from a generator)",
                ServerSpec(max(counts), 5, warm=False),
                runs,
                1,
                {"segments": 5, "counts": list(counts)},
            )
        )
    return scenarios


def running_server(spec: ServerSpec) -> contextlib.AbstractContextManager[str]:
    """Start ``fake_server.py`` for ``spec``, yield its base URL, stop it on exit."""
    return procs.running_server(spec.argv(), warm=spec.warm)


def run_client(url: str, spec: RunSpec) -> dict[str, Any]:
    """Run one client in a fresh process; return its record (``failed`` set on error)."""
    argv = [
        sys.executable,
        str(HERE / "clients.py"),
        "--client",
        spec.client,
        "--url",
        url,
        "--count",
        str(spec.count),
        "--concurrency",
        str(spec.concurrency),
        *spec.flags,
    ]
    env = {**os.environ, "MEMORIES_API_KEY": API_KEY}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"client": spec.client, "failed": f"timed out after {CLIENT_TIMEOUT:.0f}s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"client": spec.client, "failed": f"exit {done.returncode}: {tail[0]}"}
    record: dict[str, Any] = json.loads(lines[-1])
    return record


def run_scenario(scenario: Scenario, *, log: bool = True) -> list[dict[str, Any]]:
    """Start the scenario's server and make every run ``repeat`` times, rotating clients."""
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    with running_server(scenario.server) as url:
        for rep in range(scenario.repeat):
            runs = scenario.runs
            # Rotate the client order within each group of runs at one level.
            groups: dict[tuple[int, int], list[RunSpec]] = {}
            for spec in runs:
                # Clients compared at one level form a group; memory runs differ by count.
                size = spec.count if scenario.name == "memory" else 0
                groups.setdefault((spec.concurrency, size), []).append(spec)
            ordered: list[RunSpec] = []
            for group in groups.values():
                shift = rep % len(group)
                ordered += group[shift:] + group[:shift]
            for spec in ordered:
                procs.post(f"{url}/_bench/reset")
                record = run_client(url, spec)
                server = procs.get_json(f"{url}/_bench/stats", timeout=30)
                record.update(
                    scenario=scenario.name,
                    rep=rep,
                    label=spec.label,
                    server_requests=server["total_requests"],
                    server_rate_limited=server["rate_limited"],
                    loadavg=os.getloadavg()[0],
                )
                records.append(record)
                if log:
                    _log(scenario.name, rep, spec, record)
    if log:
        print(f"  {scenario.name}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    return records


def _log(name: str, rep: int, spec: RunSpec, record: dict[str, Any]) -> None:
    if "failed" in record:
        text = f"FAILED {record['failed']}"
    else:
        text = (
            f"{record['throughput']:8.0f}/s {record['cpu_us_per_transcript']:7.0f} us/t"
            f" rss {record['peak_rss_mb']:5.1f} MB ok {record['ok']}/{spec.count}"
        )
    label = f" {spec.label}" if spec.label else ""
    print(
        f"  {name:<7} rep {rep} {spec.client:<8} c={spec.concurrency:<4} n={spec.count:<6}"
        f"{label} {text}",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the scenarios, write raw JSON, the chart and the report."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]) if __doc__ else None,
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~1 minute)")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3, quick 1)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of scenarios"
    )
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=None, help="directory for the report")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown += sorted(set(clients) - set(CLIENTS))
    if unknown:
        parser.error(f"unknown scenario or client: {', '.join(unknown)}")
    if "aiohttp" not in clients:
        parser.error("the aiohttp floor is needed: every ratio is taken against it")
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    out: Path = args.out or (HERE / ".quick" if args.quick else ROOT / "docs")

    started = time.monotonic()
    info = machine.describe()
    print(
        f"machine: {info['cpu_model']}, {info['cores']} cores, load {info['loadavg']}",
        file=sys.stderr,
    )
    records: list[dict[str, Any]] = []
    scenarios = plan(names, quick=args.quick, repeat=repeat, clients=clients)
    for scenario in scenarios:
        print(f"{scenario.name}: {scenario.title}", file=sys.stderr, flush=True)
        records += run_scenario(scenario)
    micro = None
    if "micro" in names:
        print("micro: decode and structure", file=sys.stderr, flush=True)
        micro = microbench.run(quick=args.quick)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    raw = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "repeat": repeat,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": info,
        "scenarios": [
            {
                "name": s.name,
                "title": s.title,
                "server": asdict(s.server),
                "repeat": s.repeat,
                "params": s.params,
            }
            for s in scenarios
        ],
        "runs": records,
        "micro": micro,
    }
    paths = report.write(raw, out)
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    print(f"done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
