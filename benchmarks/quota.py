"""Quota benchmarks of the command users run: ``python benchmarks/quota.py``.

Every run measures whole ``memories-async export`` processes (interpreter
start included) against a fresh ``fake_server.py`` process whose
transcription quota is a strict, account-wide token bucket (burst 1, 0.08 s
latency), as ``/work/shared/API.md`` "Rate limits" says a client must
expect. The client processes of a run start together, each with its own key
of the same account (``fake_server.py --keys``) so that the server's per-key
counters tell them apart; the wall time runs from just before the first
process is started to the last exit.

``efficiency``  ideal / wall, ideal = (requests needed - 1) / quota left to us
                (the quota minus the noisy neighbour's share); for ``noise``
                and ``no_limit`` the throughput against a baseline run instead
``refused``     the clients' keys' ``0429`` answers / their requests
``lost``        a process exited non-zero, or its JSONL output does not hold
                each of its ids exactly once

Scenarios (``--scenarios``, comma-separated; all by default; ``--quick``:
``defaults_5,rate_5,three_redis``):

``defaults_5``   one process, defaults, 5 QPS; with the peers of ``quota_peers.py``
``rate_5``       one process, ``--rate 5``, 5 QPS
``defaults_1``   one process, defaults, 1 QPS, 30 ids
``rate_1``       one process, ``--rate 1``, 1 QPS, 30 ids
``three_local``  three processes, distinct ids, nothing shared, 5 QPS
``three_redis``  three processes sharing a real redis rate store, ``--rate 5``
``neighbour``    a noisy neighbour takes 2 of the 5 QPS: defaults, ``--rate 5``, peers
``noise``        20 % of requests refused whatever the rate, no quota, 2000 ids:
                 defaults against the same without refusals
``no_limit``     no limit, 0.05 s latency, 12000 ids: defaults against ``--rate 100000``

Writes ``results.json``, ``results.md`` and ``timeline.png`` (if matplotlib
imports) under ``--out`` (default ``benchmarks/.quota/``). ``--repeat N``
reports medians over N runs. No process is left behind: servers, redis and
clients are stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import payloads
import procs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASE_KEY = "sk-test-fake-key"
LATENCY = 0.08
SEGMENTS = 50
PROCESS_TIMEOUT = 1200.0
SCENARIOS = (
    "defaults_5",
    "rate_5",
    "defaults_1",
    "rate_1",
    "three_local",
    "three_redis",
    "neighbour",
    "noise",
    "no_limit",
)
QUICK = ("defaults_5", "rate_5", "three_redis")
CHARTED = ("defaults_5", "neighbour")


# -- plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """How to start ``fake_server.py`` for one run."""

    videos: int
    latency: float = LATENCY
    strict: bool = True
    qps: float | None = 5.0
    neighbour_qps: float | None = None
    refuse_share: float = 0.0
    keys: int = 1
    timeline: bool = False

    def argv(self) -> list[str]:
        args = procs.server_argv(self.videos, SEGMENTS, self.latency, "--keys", str(self.keys))
        if self.strict:
            args += ["--strict", "--burst", "1"]
        if self.qps is not None:
            args += ["--qps", f"{self.qps:g}"]
        if self.neighbour_qps is not None:
            args += ["--neighbour-qps", f"{self.neighbour_qps:g}"]
        if self.refuse_share:
            args += ["--refuse-share", f"{self.refuse_share:g}"]
        if self.timeline:
            args.append("--record-timeline")
        return args

    @property
    def available(self) -> float | None:
        """The quota left to the clients: the quota minus the neighbour."""
        if self.qps is None or not self.strict:
            return None
        return self.qps - (self.neighbour_qps or 0.0)


@dataclass(frozen=True)
class Target:
    efficiency: float
    refused: float | None = None

    def text(self) -> str:
        parts = [f"eff ≥ {self.efficiency:.2f}"]
        if self.refused is not None:
            parts.append(f"refused ≤ {self.refused:.0%}")
        parts.append("nothing lost")
        return ", ".join(parts)


@dataclass(frozen=True)
class ClientSpec:
    """One kind of client process: the SDK's CLI with flags, or a peer."""

    kind: str  # "sdk", "tenacity" or "aiolimiter"
    flags: tuple[str, ...] = ()
    rate: float = 5.0  # aiolimiter only

    @property
    def label(self) -> str:
        if self.kind != "sdk":
            return f"peer {self.kind}" + (
                f" ({self.rate:g}/s)" if self.kind == "aiolimiter" else ""
            )
        shown = [f for f in self.flags if not f.startswith("redis://")]
        text = " ".join(shown).replace("--rate-store", "--rate-store redis://…")
        return "sdk " + (text or "defaults")


@dataclass(frozen=True)
class Row:
    """One line of the table: clients of one kind against one server."""

    scenario: str
    client: ClientSpec
    server: ServerSpec
    processes: int
    ids_per_process: int
    target: Target | None
    peer: bool = False
    redis: bool = False
    baseline: Row | None = None  # throughput rows: the run they are compared with


def plan(names: Sequence[str], *, peers: bool) -> list[Row]:
    rows: list[Row] = []
    strict5 = ServerSpec(videos=100, qps=5.0, keys=1)

    def peer_rows(scenario: str, server: ServerSpec, target: Target) -> list[Row]:
        if not peers:
            return []
        return [
            Row(scenario, ClientSpec("tenacity"), server, 1, 100, target, peer=True),
            Row(scenario, ClientSpec("aiolimiter", rate=5.0), server, 1, 100, target, peer=True),
        ]

    for name in names:
        if name == "defaults_5":
            server = ServerSpec(videos=100, qps=5.0, keys=1, timeline=True)
            target = Target(0.90, 0.05)
            rows.append(Row(name, ClientSpec("sdk"), server, 1, 100, target))
            # The peers run once under the conditions of defaults_5 and rate_5 (the same
            # server); they are held to the stricter rate_5 target, for comparison.
            rows += peer_rows("defaults_5/rate_5", server, Target(0.95, 0.01))
        elif name == "rate_5":
            rows.append(
                Row(name, ClientSpec("sdk", ("--rate", "5")), strict5, 1, 100, Target(0.95, 0.01))
            )
        elif name == "defaults_1":
            server = ServerSpec(videos=30, qps=1.0, keys=1)
            rows.append(Row(name, ClientSpec("sdk"), server, 1, 30, Target(0.90)))
        elif name == "rate_1":
            server = ServerSpec(videos=30, qps=1.0, keys=1)
            rows.append(
                Row(name, ClientSpec("sdk", ("--rate", "1")), server, 1, 30, Target(0.95, 0.01))
            )
        elif name == "three_local":
            server = ServerSpec(videos=300, qps=5.0, keys=3)
            rows.append(Row(name, ClientSpec("sdk"), server, 3, 100, Target(0.70)))
        elif name == "three_redis":
            server = ServerSpec(videos=300, qps=5.0, keys=3)
            flags = ("--rate", "5", "--rate-store", "redis://", "--rate-name", "acct")
            rows.append(
                Row(name, ClientSpec("sdk", flags), server, 3, 100, Target(0.93, 0.01), redis=True)
            )
        elif name == "neighbour":
            server = ServerSpec(videos=100, qps=5.0, neighbour_qps=2.0, keys=1, timeline=True)
            target = Target(0.85)
            rows.append(Row(name, ClientSpec("sdk"), server, 1, 100, target))
            rows.append(Row(name, ClientSpec("sdk", ("--rate", "5")), server, 1, 100, target))
            rows += peer_rows(name, server, target)
        elif name == "noise":
            c16 = ("--concurrency", "16")
            # Long enough that finding the limit is not the whole run.
            noisy = ServerSpec(videos=2000, strict=False, qps=None, refuse_share=0.2, keys=1)
            clean = ServerSpec(videos=2000, strict=False, qps=None, keys=1)
            base = Row(name, ClientSpec("sdk", c16), clean, 1, 2000, None)
            rows.append(
                Row(name, ClientSpec("sdk", c16), noisy, 1, 2000, Target(0.5), baseline=base)
            )
        elif name == "no_limit":
            # "Finding no limit costs at most a second": 0.97 of a run of about 40 s.
            server = ServerSpec(videos=12000, latency=0.05, strict=False, qps=None, keys=1)
            base = Row(
                name,
                ClientSpec("sdk", ("--concurrency", "16", "--rate", "100000")),
                server,
                1,
                12000,
                None,
            )
            rows.append(
                Row(
                    name,
                    ClientSpec("sdk", ("--concurrency", "16")),
                    server,
                    1,
                    12000,
                    Target(0.97),
                    baseline=base,
                )
            )
        else:
            raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    return rows


# -- processes --------------------------------------------------------------------------


def running_server(spec: ServerSpec) -> contextlib.AbstractContextManager[str]:
    """Start ``fake_server.py`` for ``spec``, yield its base URL, stop it on exit."""
    return procs.running_server(spec.argv())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_redis() -> Iterator[str]:
    """A throw-away redis-server on a free port, no persistence; yield its URL."""
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        procs.stop(process)


def client_argv(
    spec: ClientSpec, *, url: str, ids: Path, key: Path, out: Path, redis_url: str | None
) -> list[str]:
    if spec.kind == "sdk":
        exe = shutil.which("memories-async") or str(Path(sys.executable).parent / "memories-async")
        flags = [redis_url if f == "redis://" and redis_url else f for f in spec.flags]
        return [
            exe, "export", "--ids", str(ids), "--out", str(out), "--base-url", url,
            "--api-key-file", str(key), "-q", "--json-summary", *flags,
        ]  # fmt: skip
    argv = [
        sys.executable, str(HERE / "quota_peers.py"), "--peer", spec.kind, "--url", url,
        "--api-key-file", str(key), "--ids", str(ids),
    ]  # fmt: skip
    if spec.kind == "aiolimiter":
        argv += ["--rate", f"{spec.rate:g}"]
    return argv


def _check_output(path: Path, ids: Sequence[str]) -> dict[str, Any]:
    """Whether ``path`` holds each of ``ids`` exactly once (and nothing else)."""
    seen: dict[str, int] = {}
    bad_lines = 0
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                number = record["video_no"]
            except (ValueError, KeyError, TypeError):
                bad_lines += 1
                continue
            seen[number] = seen.get(number, 0) + 1
    wanted = set(ids)
    return {
        "exists": path.exists(),
        "records": sum(seen.values()),
        "missing": sorted(wanted - seen.keys())[:5]
        + (["…"] if len(wanted - seen.keys()) > 5 else []),
        "missing_count": len(wanted - seen.keys()),
        "duplicated_count": sum(1 for n, c in seen.items() if c > 1),
        "unexpected_count": len(seen.keys() - wanted),
        "bad_lines": bad_lines,
    }


def run_once(row: Row, scratch: Path) -> dict[str, Any]:
    """One run of ``row``: fresh server (and redis), processes started together."""
    scratch.mkdir(parents=True)
    ids_of: list[list[str]] = []
    for p in range(row.processes):
        first = p * row.ids_per_process
        ids_of.append(list(payloads.video_nos(row.ids_per_process, start=first)))
    keys = [f"{BASE_KEY}-{p}" for p in range(row.processes)]
    with ExitStack() as stack:
        url = stack.enter_context(running_server(row.server))
        redis_url = stack.enter_context(running_redis()) if row.redis else None
        argvs: list[list[str]] = []
        files: list[dict[str, Path]] = []
        for p in range(row.processes):
            f = {
                "ids": scratch / f"ids-{p}.txt",
                "key": scratch / f"key-{p}.txt",
                "out": scratch / f"out-{p}.jsonl",
                "stdout": scratch / f"stdout-{p}.txt",
                "stderr": scratch / f"stderr-{p}.txt",
            }
            f["ids"].write_text("\n".join(ids_of[p]) + "\n")
            f["key"].write_text(keys[p] + "\n")
            files.append(f)
            argvs.append(
                client_argv(
                    row.client,
                    url=url,
                    ids=f["ids"],
                    key=f["key"],
                    out=f["out"],
                    redis_url=redis_url,
                )
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
        handles = []
        processes: list[subprocess.Popen[Any]] = []
        exits: list[float | None] = [None] * row.processes
        codes: list[int | None] = [None] * row.processes
        try:
            for f in files:
                handles += [f["stdout"].open("wb"), f["stderr"].open("wb")]
            procs.post(f"{url}/_bench/reset")  # full bucket, counters at 0, neighbour restarts
            started = time.perf_counter()
            for p, argv in enumerate(argvs):
                processes.append(
                    subprocess.Popen(
                        argv,
                        stdout=handles[2 * p],
                        stderr=handles[2 * p + 1],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        cwd=scratch,
                    )
                )
            deadline = started + PROCESS_TIMEOUT
            pending = set(range(row.processes))
            while pending:
                for p in list(pending):
                    code = processes[p].poll()
                    if code is not None:
                        codes[p] = code
                        exits[p] = time.perf_counter() - started
                        pending.discard(p)
                if pending:
                    if time.perf_counter() > deadline:
                        break
                    time.sleep(0.002)
            wall = max(e for e in exits if e is not None) if any(exits) else None
        finally:
            for process in processes:
                procs.stop(process)
            for handle in handles:
                handle.close()
        stats = procs.get_json(f"{url}/_bench/stats")
    ours = set(keys)
    requests = sum(v for k, v in stats["requests_by_key"].items() if k in ours)
    refused = sum(v for k, v in stats["rate_limited_by_key"].items() if k in ours)
    accepted = sum(v for k, v in stats["accepted_by_key"].items() if k in ours)
    per_process = []
    lost = False
    for p in range(row.processes):
        stdout = files[p]["stdout"].read_text(errors="replace").strip()
        stderr = files[p]["stderr"].read_text(errors="replace").strip()
        summary = None
        lines = stdout.splitlines()
        if lines:
            try:
                summary = json.loads(lines[-1])
            except ValueError:
                summary = None
        if row.client.kind == "sdk":
            check = _check_output(files[p]["out"], ids_of[p])
            failures = files[p]["out"].with_name(files[p]["out"].name + ".failures.tsv")
            check["failures_lines"] = (
                len(failures.read_text().splitlines()) if failures.exists() else 0
            )
        else:  # peers write nothing: trust their own count of what was fetched once
            check = {
                "missing_count": summary.get("missing", -1) if summary else -1,
                "duplicated_count": summary.get("duplicated", 0) if summary else 0,
                "unexpected_count": 0,
                "bad_lines": 0,
            }
        ok = (
            codes[p] == 0
            and check["missing_count"] == 0
            and check["duplicated_count"] == 0
            and check["unexpected_count"] == 0
            and check["bad_lines"] == 0
        )
        lost = lost or not ok
        per_process.append(
            {
                "key": keys[p],
                "argv": argvs[p],
                "exit_code": codes[p],
                "exit_seconds": exits[p],
                "ok": ok,
                "output": check,
                "summary": summary,
                "stderr": stderr.splitlines()[:30],
                "stderr_lines": len(stderr.splitlines()),
                "requests": stats["requests_by_key"].get(keys[p], 0),
                "accepted": stats["accepted_by_key"].get(keys[p], 0),
                "refused": stats["rate_limited_by_key"].get(keys[p], 0),
            }
        )
    timeline = None
    if stats.get("timeline") is not None:
        timeline = _bins(stats["timeline"], ours)
    return {
        "wall_seconds": wall,
        "requests": requests,
        "accepted": accepted,
        "refused": refused,
        "refused_share": refused / requests if requests else None,
        "neighbour_taken": stats.get("neighbour_taken"),
        "neighbour_refused": stats.get("neighbour_refused"),
        "peak_in_flight": stats.get("peak_in_flight"),
        "codes": stats.get("codes"),
        "lost": lost,
        "processes": per_process,
        "timeline_bins": timeline,
    }


def _bins(timeline: list[list[Any]], keys: set[str]) -> dict[str, list[int]]:
    """Accepted and refused requests of ``keys`` per 1-s bin of the server's timeline."""
    accepted: list[int] = []
    refused: list[int] = []
    for at, _endpoint, key, ok in timeline:
        if key not in keys:
            continue
        b = int(at)
        while len(accepted) <= b:
            accepted.append(0)
            refused.append(0)
        (accepted if ok else refused)[b] += 1
    return {"accepted": accepted, "refused": refused}


# -- metrics ----------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def measure(row: Row, repeat: int, scratch: Path) -> dict[str, Any]:
    """Run ``row`` (and its baseline) ``repeat`` times; the medians and every run."""
    runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    total = row.processes * row.ids_per_process
    for r in range(repeat):
        label = f"{row.scenario} · {row.client.label}"
        print(f"  run {r + 1}/{repeat}: {label} …", file=sys.stderr, flush=True)
        if row.baseline is not None:
            base = run_once(row.baseline, scratch / f"{_slug(row)}-base-{r}")
            base_runs.append(base)
            print(f"    baseline {base['wall_seconds']:.2f}s", file=sys.stderr, flush=True)
        run = run_once(row, scratch / f"{_slug(row)}-{r}")
        wall = run["wall_seconds"]
        if row.baseline is not None:
            bwall = base_runs[-1]["wall_seconds"]
            run["efficiency"] = bwall / wall if wall and bwall else None
            run["seconds_lost"] = wall - bwall if wall and bwall else None
            run["ideal_seconds"] = None
        else:
            available = row.server.available
            assert available is not None
            ideal = (total - 1) / available
            run["ideal_seconds"] = ideal
            run["efficiency"] = ideal / wall if wall else None
        runs.append(run)
        eff = run["efficiency"]
        print(
            f"    wall {wall:.2f}s  efficiency {eff:.3f}  refused {run['refused']}/"
            f"{run['requests']}  lost {run['lost']}",
            file=sys.stderr,
            flush=True,
        )
    efficiency = _median([r["efficiency"] for r in runs])
    refused = _median([r["refused_share"] for r in runs])
    lost = any(r["lost"] for r in runs)
    verdict = None
    if row.target is not None and efficiency is not None:
        met = efficiency >= row.target.efficiency and not lost
        if row.target.refused is not None:
            met = met and refused is not None and refused <= row.target.refused
        verdict = "meets" if met else "misses"
    return {
        "scenario": row.scenario,
        "client": row.client.label,
        "peer": row.peer,
        "processes": row.processes,
        "ids_per_process": row.ids_per_process,
        "server": asdict(row.server),
        "quota_available": row.server.available,
        "target": None if row.target is None else asdict(row.target),
        "target_text": None if row.target is None else row.target.text(),
        "efficiency": efficiency,
        "refused_share": refused,
        "wall_seconds": _median([r["wall_seconds"] for r in runs]),
        "ideal_seconds": _median([r["ideal_seconds"] for r in runs]),
        "baseline_wall_seconds": _median([b["wall_seconds"] for b in base_runs]),
        "baseline_client": None if row.baseline is None else row.baseline.client.label,
        "baseline_server": None if row.baseline is None else asdict(row.baseline.server),
        "seconds_lost": _median([r.get("seconds_lost") for r in runs]),
        "lost": lost,
        "verdict": verdict,
        "commands": [_shown(p["argv"]) for p in runs[0]["processes"]],
        "server_command": _shown(row.server.argv()),
        "runs": runs,
        "baseline_runs": base_runs,
    }


def _slug(row: Row) -> str:
    text = f"{row.scenario}-{row.client.label}"
    return "".join(c if c.isalnum() else "_" for c in text)[:80]


def _shown(argv: Sequence[str]) -> str:
    shown = []
    for part in argv:
        text = part
        if part == sys.executable:
            text = "python"
        elif part.startswith("/"):
            path = Path(part)
            text = path.name if path.parent.name == "bin" else f"…/{path.name}"
        shown.append(text)
    return " ".join(shown)


# -- report -----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Quota benchmarks: whole `memories-async export` processes",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']} · repeat {meta['repeat']}"
        " (medians)",
        "",
        "Strict account-wide bucket (burst 1), 0.08 s latency, fresh server per run, one key per"
        " process. Efficiency = ideal / wall with ideal = (N - 1) / (quota - neighbour), wall from"
        " just before the processes start to the last exit; for `noise` and `no_limit` the"
        " baseline's wall / this wall. Refused = 0429 answers / requests of the clients' keys."
        " Peer rows (hand-written aiohttp clients) are for comparison: their target is shown in"
        " parentheses.",
        "",
        "| scenario | client | efficiency | refused share | wall s | ideal s | requests | lost |"
        " target | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        ideal = r["ideal_seconds"]
        if ideal is None and r["baseline_wall_seconds"] is not None:
            ideal_text = f"base {r['baseline_wall_seconds']:.2f}"
        else:
            ideal_text = "—" if ideal is None else f"{ideal:.2f}"
        target = r["target_text"] or "—"
        verdict = r["verdict"] or "—"
        if r["peer"]:
            target, verdict = f"({target})", f"({verdict})"
        requests = statistics.median([run["requests"] for run in r["runs"]])
        eff = "—" if r["efficiency"] is None else f"{r['efficiency']:.3f}"
        wall = "—" if r["wall_seconds"] is None else f"{r['wall_seconds']:.2f}"
        times = "" if r["processes"] == 1 else f" x{r['processes']}"
        lines.append(
            f"| {r['scenario']} | {r['client']}{times} | {eff} |"
            f" {_pct(r['refused_share'])} | {wall} | {ideal_text} | {requests:g} |"
            f" {'**yes**' if r['lost'] else 'no'} | {target} | {verdict} |"
        )
    extra = [r for r in results if r["seconds_lost"] is not None]
    if extra:
        lines += ["", "Throughput scenarios:", ""]
        for r in extra:
            lines.append(
                f"- `{r['scenario']}`: {r['client']} {r['wall_seconds']:.2f} s against"
                f" {r['baseline_client']} {r['baseline_wall_seconds']:.2f} s"
                f" ({'no refusals' if r['scenario'] == 'noise' else 'unpaced'}):"
                f" {r['seconds_lost']:+.2f} s."
            )
    problems = []
    for r in results:
        for i, run in enumerate(r["runs"] + r["baseline_runs"]):
            for p in run["processes"]:
                if p["ok"] and not p["stderr"]:
                    continue
                out = p["output"]
                problems.append(
                    f"- `{r['scenario']}` {r['client']} run {i + 1} key `{p['key']}`: exit"
                    f" {p['exit_code']}, missing {out['missing_count']}, duplicated"
                    f" {out['duplicated_count']}, stderr {p['stderr_lines']} line(s)"
                    + (f": `{p['stderr'][0][:200]}`" if p["stderr"] else "")
                )
    lines += ["", "Process problems (non-zero exits, lost ids, stderr output):", ""]
    lines += problems or ["- none"]
    lines += ["", "Commands (one line per process, first run):", ""]
    for r in results:
        lines.append(f"- `{r['scenario']}` {r['client']}: server `{r['server_command']}`")
        for command in dict.fromkeys(r["commands"]):
            lines.append(f"  - `{command}`")
    return "\n".join(lines) + "\n"


def chart(results: list[dict[str, Any]], path: Path) -> bool:
    """Accepted and refused requests per second for the charted scenarios; False without mpl."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    charted = [
        r
        for r in results
        if r["scenario"].split("/")[0] in CHARTED and r["runs"][0]["timeline_bins"]
    ]
    if not charted:
        return False
    fig, axes = plt.subplots(len(charted), 1, figsize=(10, 2.4 * len(charted)), squeeze=False)
    for ax, r in zip(axes[:, 0], charted, strict=True):
        bins = r["runs"][0]["timeline_bins"]
        xs = list(range(len(bins["accepted"])))
        ax.bar(xs, bins["accepted"], width=0.9, label="accepted", color="tab:green")
        ax.bar(
            xs,
            bins["refused"],
            width=0.9,
            bottom=bins["accepted"],
            label="refused (0429)",
            color="tab:red",
        )
        if r["quota_available"]:
            ax.axhline(
                r["quota_available"],
                color="black",
                linewidth=0.8,
                linestyle="--",
                label="quota left",
            )
        eff = r["runs"][0]["efficiency"]
        ax.set_title(f"{r['scenario']} · {r['client']} (efficiency {eff:.2f})", fontsize=9)
        ax.set_ylabel("requests / s")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the server's reset (1-s bins)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--out", type=Path, default=HERE / ".quota")
    parser.add_argument("--scenarios", default=None, help=f"comma-separated: {','.join(SCENARIOS)}")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true", help="skip the quota_peers.py rows")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.scenarios:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    else:
        names = list(QUICK if args.quick else SCENARIOS)
    try:
        rows = plan(names, peers=not args.no_peers)
    except ValueError as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="quota-bench-"))
    started = time.time()
    results: list[dict[str, Any]] = []
    try:
        for row in rows:
            results.append(measure(row, args.repeat, scratch))
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "machine": f"{platform.machine()} · {os.cpu_count()} CPUs · load"
        f" {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "python": platform.python_version(),
        "repeat": args.repeat,
        "scenarios": names,
        "duration_seconds": round(time.time() - started, 1),
    }
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, default=str)
    )
    text = markdown(results, meta)
    if chart(results, args.out / "timeline.png"):
        text += "\n![accepted and refused requests per second](timeline.png)\n"
    (args.out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
