"""The export command users run, whole process, against a hand-written loop.

``python benchmarks/export.py`` runs ``memories-async export --ids IDS --out OUT.jsonl
--concurrency 64`` over 20,000 transcripts (50 segments each) from the local fake
server, beside ``export_loop.py`` (aiohttp, a semaphore, orjson, one file written with plain writes)
doing the same work. Runs alternate, ``--repeat`` times each; the report gives the
medians of client CPU (user + system of the whole process, interpreter start included)
and wall time, and their ratios to the loop. The server runs in its own process, pinned
to the other core when the machine has two, the clients to the first. Also measured:
the peak RSS of each client, and the command rerun over its complete output (a resume
with nothing left to fetch).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import payloads
import procs

HERE = Path(__file__).resolve().parent
KEY = "sk-test-fake-key"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one client process: its CPU seconds, wall seconds and peak RSS (MB)."""
    cpu, start = _child_cpu(), time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _peak_kb(process.pid))
        time.sleep(0.02)
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {process.returncode}: {stderr.decode()[-500:]}")
    return {
        "cpu": _child_cpu() - cpu,
        "wall": time.perf_counter() - start,
        "rss_mb": peak / 1024,
    }


def pinned(core: int, argv: list[str]) -> list[str]:
    """``argv`` run on one core, when the machine has two and ``taskset``: the server on
    one, the clients on the other."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *argv]
    return argv


def server_argv(videos: int, segments: int) -> list[str]:
    return pinned(1, procs.server_argv(videos, segments, 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / ".export")
    parser.add_argument(
        "--memory",
        type=int,
        nargs=2,
        default=[2_000, 100_000],
        metavar=("SMALL", "LARGE"),
        help="id counts whose peak RSS the memory section compares",
    )
    parser.add_argument("--resume-pairs", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    rows: dict[str, list[dict[str, float]]] = {"sdk export": [], "aiohttp + orjson loop": []}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        ids = scratch / "ids.txt"
        ids.write_text("".join(f"{n}\n" for n in payloads.video_nos(args.ids)))
        with procs.running_server(server_argv(args.ids, 50)) as url:
            env.update(MEMORIES_API_KEY=KEY, MEMORIES_BASE_URL=url)
            for rep in range(args.repeat):
                order = ["sdk export", "aiohttp + orjson loop"]
                for name in order if rep % 2 == 0 else reversed(order):
                    out = scratch / f"out-{rep}-{name.split()[0]}.jsonl"
                    if name == "sdk export":
                        command = ["memories-async", "export", "--ids", str(ids)]
                        command += ["--out", str(out), "--concurrency", str(args.concurrency)]
                        command += ["-q"]
                    else:
                        command = [sys.executable, str(HERE / "export_loop.py"), url, KEY]
                        command += [str(ids), str(out), str(args.concurrency)]
                    result = timed(pinned(0, command), env)
                    lines = sum(1 for _ in out.open("rb"))
                    if lines != args.ids:
                        raise RuntimeError(f"{name} wrote {lines} records of {args.ids}")
                    rows[name].append(result)
                    print(
                        f"  {name} run {rep + 1}: cpu {result['cpu']:.2f}s"
                        f" wall {result['wall']:.2f}s rss {result['rss_mb']:.0f} MB",
                        flush=True,
                    )
                    if name == "sdk export" and rep == 0:
                        resumed = timed(pinned(0, command), env)
                        rows.setdefault("sdk export, rerun over its output", []).append(resumed)
    report = summarise(rows, args)
    if not args.skip_memory:
        memory = measure_memory(args, env)
        rows.update(memory)
        report += "\n" + summarise_memory(memory, args)
    (args.out / "results.json").write_text(
        json.dumps({"rows": rows, "args": vars(args)}, default=str, indent=1)
    )
    (args.out / "results.md").write_text(report)
    print(report)
    return 0


def measure_memory(
    args: argparse.Namespace, env: dict[str, str]
) -> dict[str, list[dict[str, float]]]:
    """Peak RSS of the export command over ``args.memory`` ids (the server's answers
    small, 5 segments: the memory the ids cost is what is measured), twice each, and a
    rerun over a ledger of ``args.resume_pairs`` done pairs (nothing left to fetch)."""
    small, large = args.memory
    rows: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        with procs.running_server(server_argv(large, 5)) as url:
            run_env = {**env, "MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": url}
            for count in (small, large) * 2:
                ids = scratch / f"ids-{count}.txt"
                ids.write_text("".join(f"{n}\n" for n in payloads.video_nos(count)))
                out = scratch / f"mem-{count}.jsonl"
                for stale in (out, Path(f"{out}.ledger")):
                    stale.unlink(missing_ok=True)
                command = ["memories-async", "export", "--ids", str(ids), "--out", str(out)]
                command += ["--concurrency", str(args.concurrency), "-q"]
                result = timed(pinned(0, command), run_env)
                rows.setdefault(f"export of {count:,} ids", []).append(result)
                print(f"  {count:,} ids: rss {result['rss_mb']:.1f} MB", flush=True)
        rows[f"rerun over a ledger of {args.resume_pairs:,} pairs"] = [
            resume_over_ledger(scratch, args.resume_pairs, env)
        ]
    return rows


def resume_over_ledger(scratch: Path, pairs: int, env: dict[str, str]) -> dict[str, float]:
    """Rerun ``export`` over a ledger of ``pairs`` committed records and the id file that
    made them: the whole process, from start to its summary, nothing left to fetch."""
    from memories_async import Transcript, TranscriptKind
    from memories_async._formats import to_jsonl_line
    from memories_async._sinks import LEDGER_VERSION

    numbers = [f"VI{600000000000000000 + n:018d}" for n in range(pairs)]
    out, offset = scratch / "big.jsonl", 0
    with open(out, "wb") as data, open(f"{out}.ledger", "wb") as ledger:
        ledger.write(f"memories-async export ledger {LEDGER_VERSION} jsonl\n".encode())
        for number in numbers:  # empty transcripts: what a ledger of a million costs
            line = to_jsonl_line(Transcript(number, TranscriptKind.VISUAL))
            data.write(line)
            offset += len(line)
            ledger.write(b"%d\tvisual\t%s\n" % (offset, number.encode()))
    ids = scratch / "big-ids.txt"
    ids.write_text("".join(f"{number}\n" for number in numbers))
    del numbers
    # Nothing is fetched: the address is never called.
    run_env = {**env, "MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": "http://127.0.0.1:9"}
    command = ["memories-async", "export", "--ids", str(ids), "--out", str(out), "-q"]
    result = timed(pinned(0, command), run_env)
    print(f"  rerun over {pairs:,} done pairs: wall {result['wall']:.2f}s", flush=True)
    return result


def summarise_memory(rows: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    small, large = args.memory
    peak = {name: statistics.median(r["rss_mb"] for r in runs) for name, runs in rows.items()}
    base = peak[f"export of {small:,} ids"]
    resume = rows[f"rerun over a ledger of {args.resume_pairs:,} pairs"][0]
    lines = [
        "Peak RSS of the export command (medians of 2 runs), and a rerun with nothing to"
        " fetch over a large ledger:",
        "",
        "| run | peak RSS MB | ratio | wall s |",
        "|:---|---:|---:|---:|",
    ]
    for name, runs in rows.items():
        wall = statistics.median(r["wall"] for r in runs)
        lines.append(f"| {name} | {peak[name]:.1f} | {peak[name] / base:.2f} | {wall:.2f} |")
    lines.append("")
    lines.append(
        f"Peak RSS {large:,} / {small:,} ids: {peak[f'export of {large:,} ids'] / base:.2f};"
        f" rerun over {args.resume_pairs:,} pairs: {resume['rss_mb']:.0f} MB,"
        f" {resume['wall']:.2f} s."
    )
    return "\n".join(lines) + "\n"


def summarise(rows: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    """The table of medians. A ratio is the median of the ratios of the runs made side by
    side (run ``k`` of a client over run ``k`` of the loop): on a shared machine whose
    speed drifts during a run, the ratio of two medians can be off by a tenth."""
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in ("cpu", "wall", "rss_mb")}
        for name, runs in rows.items()
    }
    loop = rows["aiohttp + orjson loop"]

    def ratio(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] / base[key] for r, base in zip(runs, loop, strict=False))

    lines = [
        f"Export of {args.ids:,} transcripts at concurrency {args.concurrency}, medians of"
        f" {args.repeat} alternating runs (ratios: medians of the runs' own ratios):",
        "",
        "| client | CPU s | CPU ratio | wall s | wall ratio | peak RSS MB |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for name, m in medians.items():
        lines.append(
            f"| {name} | {m['cpu']:.2f} | {ratio(rows[name], 'cpu'):.2f} | {m['wall']:.2f}"
            f" | {ratio(rows[name], 'wall'):.2f} | {m['rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
