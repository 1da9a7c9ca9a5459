"""Turn the raw results of ``run.py`` into ``benchmarks.md``, a chart and raw JSON.

``python benchmarks/report.py docs/benchmarks/results.json --out docs`` rebuilds
the report from saved results without running anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENT_NAMES = {
    "sdk": "memories-async",
    "aiohttp": "aiohttp loop (floor)",
    "requests": "requests + threads",
    "httpx": "httpx.AsyncClient",
}
CLIENT_ORDER = ("sdk", "aiohttp", "requests", "httpx")
METRICS = (
    "throughput",
    "cpu_us_per_transcript",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "peak_rss_mb",
    "rss_growth_mb",
    "wall_s",
    "ok",
    "errors",
    "attempts",
    "retries",
    "server_requests",
    "server_rate_limited",
)
TARGET_CPU = 1.15
TARGET_IDEAL = 0.95
TARGET_VS_REQUESTS = 4.0
TARGET_VS_HTTPX = 10.0
TARGET_RSS = 1.2
ANALYSIS = HERE / "analysis.md"

Key = tuple[str, str, int, int, str]  # scenario, client, concurrency, count, label
Summary = dict[Key, dict[str, Any]]


def summarize(runs: Iterable[dict[str, Any]]) -> Summary:
    """Medians of every metric over the repetitions of each (scenario, client, level)."""
    groups: dict[Key, list[dict[str, Any]]] = {}
    failures: dict[Key, list[str]] = {}
    for run in runs:
        key: Key = (
            run.get("scenario", ""),
            run["client"],
            int(run.get("concurrency", 0)),
            int(run.get("count", 0)),
            run.get("label", ""),
        )
        if "failed" in run:
            failures.setdefault(key, []).append(str(run["failed"]))
            continue
        groups.setdefault(key, []).append(run)
    summary: Summary = {}
    for key, items in groups.items():
        medians: dict[str, Any] = {"reps": len(items)}
        for metric in METRICS:
            values = [r[metric] for r in items if r.get(metric) is not None]
            medians[metric] = statistics.median(values) if values else None
        summary[key] = medians
    for key, reasons in failures.items():
        summary.setdefault(key, {"reps": 0})["failed"] = reasons
    return summary


def _find(summary: Summary, scenario: str, client: str, concurrency: int) -> dict[str, Any]:
    """The medians of one client at one level (runs with a label, i.e. variants, excluded)."""
    for key, value in summary.items():
        if key[:3] == (scenario, client, concurrency) and not key[4]:
            return value
    return {}


def _levels(summary: Summary, scenario: str) -> list[int]:
    return sorted({key[2] for key in summary if key[0] == scenario})


def _clients(summary: Summary, scenario: str) -> list[str]:
    present = {key[1] for key in summary if key[0] == scenario}
    return [c for c in CLIENT_ORDER if c in present]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _x(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}x"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# -- targets ----------------------------------------------------------------------------


def evaluate(raw: dict[str, Any], summary: Summary) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it is met (``None``: not measured)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, measured: str, met: bool | None, detail: str = "") -> None:
        targets.append({"target": name, "measured": measured, "met": met, "detail": detail})

    cpu_parts = []
    cpu_ok = []
    for scenario, level in (("cpu", 64), ("cpu", 16), ("large", 16), ("latency", 64)):
        sdk = _find(summary, scenario, "sdk", level).get("cpu_us_per_transcript")
        floor = _find(summary, scenario, "aiohttp", level).get("cpu_us_per_transcript")
        ratio = _ratio(sdk, floor)
        if ratio is not None:
            cpu_parts.append(f"{scenario} c={level}: {_x(ratio)}")
            cpu_ok.append(ratio <= TARGET_CPU)
    add(
        f"client CPU per transcript ≤ {TARGET_CPU}x the aiohttp loop",
        "; ".join(cpu_parts) or "not measured",
        all(cpu_ok) if cpu_ok else None,
    )

    latency = next((s for s in raw["scenarios"] if s["name"] == "latency"), None)
    if latency is not None:
        seconds = latency["params"]["latency_s"]
        parts, oks, floors = [], [], []
        for level in _levels(summary, "latency"):
            sdk = _find(summary, "latency", "sdk", level).get("throughput")
            floor = _find(summary, "latency", "aiohttp", level).get("throughput")
            ratio = _ratio(sdk, level / seconds)
            if ratio is not None:
                parts.append(f"c={level}: {_x(ratio)}")
                oks.append(ratio >= TARGET_IDEAL)
                if ratio < TARGET_IDEAL:
                    floors.append(f"c={level}: {_x(_ratio(floor, level / seconds))}")
        detail = ""
        if any(oks) and not all(oks):
            met = [p.split(":")[0] for p, ok in zip(parts, oks, strict=True) if ok]
            detail = f"met at {', '.join(met)}; the floor itself reaches {'; '.join(floors)}"
        add(
            f"latency-bound throughput ≥ {TARGET_IDEAL}x concurrency / latency",
            "; ".join(parts),
            all(oks) if oks else None,
            detail,
        )
    else:
        add(
            f"latency-bound throughput ≥ {TARGET_IDEAL}x concurrency / latency",
            "not measured",
            None,
        )

    for peer, goal in (("requests", TARGET_VS_REQUESTS), ("httpx", TARGET_VS_HTTPX)):
        parts, oks = [], []
        for scenario in ("cpu", "latency"):
            sdk = _find(summary, scenario, "sdk", 64).get("throughput")
            other = _find(summary, scenario, peer, 64).get("throughput")
            ratio = _ratio(sdk, other)
            if ratio is not None:
                parts.append(f"{scenario}: {_x(ratio, 1)}")
                oks.append(ratio >= goal)
        add(
            f"throughput at concurrency 64 ≥ {goal:g}x {CLIENT_NAMES[peer]}",
            "; ".join(parts) or "not measured",
            all(oks) if oks else None,
            "met CPU-bound only" if oks and oks[0] and not all(oks) else "",
        )

    parts, oks = [], []
    for label in ("dedupe off", "dedupe on (default)"):
        rss = {
            key[3]: value.get("peak_rss_mb")
            for key, value in summary.items()
            if key[0] == "memory" and key[4] == label
        }
        if rss and min(rss) == 1000 and max(rss) >= 100_000:
            ratio = _ratio(rss[max(rss)], rss[1000])
            parts.append(f"{label}: {_x(ratio)}")
            oks.append(ratio is not None and ratio <= TARGET_RSS)
    add(
        f"peak RSS at 100k ids ≤ {TARGET_RSS}x that at 1k",
        "; ".join(parts) or "not measured (quick run stops at 10k)",
        oks[0] if oks else None,
        "judged with dedupe=False, the setting documented for very large inputs"
        if len(oks) == 2 and oks[0] != oks[1]
        else "",
    )

    micro = raw.get("micro")
    if micro:
        by = {(r["payload"], r["decoder"]): r["us_per_call"] for r in micro["results"]}
        parts, oks = [], []
        for payload in ("small", "typical", "large"):
            ratio = _ratio(by.get((payload, "sdk")), by.get((payload, "pydantic")))
            if ratio is not None:
                parts.append(f"{payload}: {_x(ratio)}")
                oks.append(ratio <= 1.0)
        add("converter no slower than pydantic v2", "; ".join(parts), all(oks) if oks else None)
    else:
        add("converter no slower than pydantic v2", "not measured", None)
    return targets


# -- sections ------------------------------------------------------------------------------


def _latency_section(raw: dict[str, Any], summary: Summary) -> list[str]:
    scenario = next(s for s in raw["scenarios"] if s["name"] == "latency")
    seconds = scenario["params"]["latency_s"]
    clients = _clients(summary, "latency")
    lines = [
        f"## {scenario['title']}",
        "",
        "Transcripts per second (median), and in brackets the share of the ideal"
        f" `concurrency / latency` = `concurrency / {seconds:g} s`.",
        "",
        "![throughput against concurrency](benchmarks/latency-throughput.png)",
        "",
    ]
    header = ["concurrency", "ideal/s", *(CLIENT_NAMES[c] for c in clients)]
    rows = []
    for level in _levels(summary, "latency"):
        ideal = level / seconds
        cells = [str(level), _num(ideal)]
        for client in clients:
            value = _find(summary, "latency", client, level).get("throughput")
            cells.append(f"{_num(value)} ({_x(_ratio(value, ideal))})")
        rows.append(cells)
    lines += _table(header, rows)
    lines += ["", "The SDK against each client at the same concurrency (throughput ratio):", ""]
    others = [c for c in clients if c != "sdk"]
    header = ["concurrency", *(f"÷ {CLIENT_NAMES[c]}" for c in others)]
    header += ["SDK CPU ÷ floor", "SDK p50 / p99 ms", "floor p50 / p99 ms"]
    rows = []
    for level in _levels(summary, "latency"):
        sdk = _find(summary, "latency", "sdk", level)
        floor = _find(summary, "latency", "aiohttp", level)
        cells = [str(level)]
        cells += [
            _x(_ratio(sdk.get("throughput"), _find(summary, "latency", c, level).get("throughput")))
            for c in others
        ]
        cells.append(
            _x(_ratio(sdk.get("cpu_us_per_transcript"), floor.get("cpu_us_per_transcript")))
        )
        cells.append(f"{_num(sdk.get('p50_ms'), 1)} / {_num(sdk.get('p99_ms'), 1)}")
        cells.append(f"{_num(floor.get('p50_ms'), 1)} / {_num(floor.get('p99_ms'), 1)}")
        rows.append(cells)
    lines += _table(header, rows)
    return lines


def _per_client_section(raw: dict[str, Any], summary: Summary, name: str) -> list[str]:
    scenario = next(s for s in raw["scenarios"] if s["name"] == name)
    lines = [f"## {scenario['title']}", ""]
    for level in _levels(summary, name):
        floor = _find(summary, name, "aiohttp", level)
        lines += [f"Concurrency {level}:", ""]
        header = [
            "client",
            "n",
            "transcripts/s",
            "÷ floor",
            "CPU µs/transcript",
            "÷ floor",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "peak RSS MB",
            "errors",
        ]
        rows = []
        for client in _clients(summary, name):
            m = _find(summary, name, client, level)
            rows.append(
                [
                    CLIENT_NAMES[client],
                    _num(m.get("ok")),
                    _num(m.get("throughput")),
                    _x(_ratio(m.get("throughput"), floor.get("throughput"))),
                    _num(m.get("cpu_us_per_transcript")),
                    _x(_ratio(m.get("cpu_us_per_transcript"), floor.get("cpu_us_per_transcript"))),
                    _num(m.get("p50_ms"), 1),
                    _num(m.get("p95_ms"), 1),
                    _num(m.get("p99_ms"), 1),
                    _num(m.get("peak_rss_mb"), 1),
                    _num(m.get("errors")),
                ]
            )
        lines += _table(header, rows)
        lines.append("")
    return lines[:-1]


def _rate_section(raw: dict[str, Any], summary: Summary) -> list[str]:
    scenario = next(s for s in raw["scenarios"] if s["name"] == "rate")
    qps = scenario["params"]["qps"]
    lines = [
        f"## {scenario['title']}",
        "",
        f"The server admits {qps:g} requests per second (token bucket holding {qps:g} tokens,"
        " full at the start) and answers the rest `0429`. The SDK runs with its defaults"
        " (no `rate`: the governor finds the limit by itself), then with `rate` set to the"
        " limit; the peers retry a `0429` after a fixed 0.1 s sleep. The best possible time"
        " is `(ids - bucket) / QPS`; request counts are the server's.",
        "",
    ]
    header = [
        "client",
        "fetched",
        "achieved/s",
        "÷ best possible",
        "requests sent",
        "`0429` answers",
        "`0429` share",
        "seconds",
    ]
    rows = []
    keys = sorted(
        (k for k in summary if k[0] == "rate"), key=lambda k: (CLIENT_ORDER.index(k[1]), k[4])
    )
    for key in keys:
        m = summary[key]
        achieved = _ratio(m.get("ok"), m.get("wall_s"))
        share = _ratio(m.get("server_rate_limited"), m.get("server_requests")) or 0.0
        best = key[3] / max((key[3] - qps) / qps, 1e-9)
        rows.append(
            [
                CLIENT_NAMES[key[1]] + (f", {key[4]}" if key[4] else ""),
                f"{_num(m.get('ok'))}/{key[3]}",
                _num(achieved, 1),
                _x(_ratio(achieved, best)),
                _num(m.get("server_requests")),
                _num(m.get("server_rate_limited")),
                f"{100 * share:.0f} %",
                _num(m.get("wall_s"), 1),
            ]
        )
    return lines + _table(header, rows)


def _memory_section(raw: dict[str, Any], summary: Summary) -> list[str]:
    scenario = next(s for s in raw["scenarios"] if s["name"] == "memory")
    lines = [
        f"## {scenario['title']}",
        "",
        "`fetch_transcriptions` over a generator of ids at concurrency 64; the consumer"
        " counts outcomes and drops them. Peak RSS is the whole client process"
        " (interpreter and imports included); growth is the peak during the fetch loop"
        " minus the peak before it.",
        "",
    ]
    header = ["ids", "dedupe", "peak RSS MB", "÷ 1k ids", "growth MB", "transcripts/s", "CPU µs/t"]
    rows = []
    keys = sorted((k for k in summary if k[0] == "memory"), key=lambda k: (k[4], k[3]))
    for key in keys:
        m = summary[key]
        base = next(
            (summary[k] for k in keys if k[4] == key[4] and k[3] == min(kk[3] for kk in keys)), {}
        )
        rows.append(
            [
                f"{key[3]:,}",
                key[4],
                _num(m.get("peak_rss_mb"), 1),
                _x(_ratio(m.get("peak_rss_mb"), base.get("peak_rss_mb"))),
                _num(m.get("rss_growth_mb"), 1),
                _num(m.get("throughput")),
                _num(m.get("cpu_us_per_transcript")),
            ]
        )
    return lines + _table(header, rows, "lllrrrr")


def _micro_section(raw: dict[str, Any]) -> list[str]:
    micro = raw["micro"]
    results = micro["results"]
    decoders = list(dict.fromkeys(r["decoder"] for r in results))
    by = {(r["payload"], r["decoder"]): r for r in results}
    lines = [
        "## Decode and structure one answer",
        "",
        "Microseconds per answer (best of 5), from the answer's bytes to an immutable"
        " transcript model with float times, `code` checked. `sdk` is what the client"
        " does per answer: `_protocol.parse_response` (orjson and the envelope checks) and"
        " `_converter.structure_transcript` (frozen attrs models). pydantic v2"
        " (`model_validate_json`, frozen models with aliases) and msgspec"
        " (`Decoder(..., strict=False)`, frozen Structs with renames) build equivalent"
        " models; `orjson+tuples` is the aiohttp floor's work, for reference. All outputs"
        " are checked equal before timing.",
        "",
    ]
    header = ["payload", "segments", "bytes", *decoders, "sdk ÷ pydantic", "sdk ÷ msgspec"]
    rows = []
    for payload in dict.fromkeys(r["payload"] for r in results):
        first = by[(payload, decoders[0])]
        cells = [payload, str(first["segments"]), f"{first['bytes']:,}"]
        cells += [_num(by[(payload, d)]["us_per_call"], 1) for d in decoders]
        sdk = by[(payload, "sdk")]["us_per_call"]
        cells.append(_x(_ratio(sdk, by[(payload, "pydantic")]["us_per_call"])))
        cells.append(_x(_ratio(sdk, by[(payload, "msgspec")]["us_per_call"])))
        rows.append(cells)
    return lines + _table(header, rows)


def _machine_section(raw: dict[str, Any]) -> list[str]:
    m = raw["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return [
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable),"
        " shared with other work: absolute numbers move from run to run, ratios much less.",
        f"- Load average (1 min) at start {m['loadavg'][0]},"
        f" at end {_num(m.get('loadavg_end', [None])[0], 2)}.",
        f"- {m['implementation']} {m['python']} on {m['platform']}.",
        f"- Libraries: {libs}.",
        f"- Generated {raw['generated']} in {raw['duration_s']:.0f} s,"
        f" {raw['repeat']} repetition(s), medians reported"
        + (" — **quick smoke run, not for conclusions**." if raw["quick"] else "."),
    ]


def _targets_section(targets: list[dict[str, Any]]) -> list[str]:
    marks = {True: "met", False: "**missed**", None: "not measured"}
    rows = [
        [t["target"], t["measured"], marks[t["met"]] + (f" ({t['detail']})" if t["detail"] else "")]
        for t in targets
    ]
    return [
        "## Targets",
        "",
        *_table(["target", "measured (medians)", "verdict"], rows, "llll"[:3]),
    ]


METHOD = """## Method

`python benchmarks/run.py` starts the project's fake server
(`benchmarks/fake_server.py`, built on `memories_async.testing.FakeServer`) in a process
of its own and runs every client in a fresh process (`benchmarks/clients.py`). The
server holds explicit transcripts (`benchmarks/payloads.py`): every client of a scenario
reads the same bytes, and every body is rendered once before the measured runs. Each
client fetches distinct video numbers produced lazily, keeps at most *concurrency*
requests in flight, and for each answer parses the JSON envelope, checks that `code`
is `"0000"` and builds the segments with float times:

- **memories-async**: `client.fetch_transcriptions(ids, max_concurrency=C)`, every
  other setting at its default (no `rate`; governor, retries and de-duplication on).
- **aiohttp loop (floor)**: one `aiohttp.ClientSession` with a pool of C connections,
  an `asyncio.Semaphore(C)` acquired before each task is created, `orjson.loads`,
  segments as `(index, start, end, text)` tuples.
- **requests + threads**: a `ThreadPoolExecutor(C)`, one `requests.Session` per
  thread, `response.json()` — the style of the API's own examples, with connection reuse.
- **httpx.AsyncClient**: one client with a pool of C connections, the same semaphore
  loop as the floor, `response.json()`.

CPU time is the client process's user + system time (every thread) around the fetch
loop only, divided by the transcripts fetched; imports and interpreter start are
outside it. Latency is per transcript, from the moment its request may start (a
worker or semaphore slot is free) to the parsed answer. Peak RSS is the client
process's `VmHWM` (its high-water resident set). The server's CPU is never counted.
With two cores, client and server each have about one: past a few thousand requests
per second the server is the limit, which caps throughput but not the CPU per
transcript. httpx runs a quarter (concurrency 64 and up) or half (16) of the requests
of the others: it is 10 to 50 times slower there, and its rates hold with fewer."""


def render(raw: dict[str, Any]) -> str:
    """The whole markdown report."""
    summary = summarize(raw["runs"])
    names = {s["name"] for s in raw["scenarios"]}
    lines = [
        "# Benchmarks",
        "",
        "How fast memories-async fetches transcripts concurrently, against a hand-written"
        " aiohttp loop (the floor to beat) and the usual alternatives, on the same payloads"
        " from the same local fake server. Reproduce with `python benchmarks/run.py`"
        " (`--quick` for a one-minute smoke run; `--help` for options). Raw results:"
        " [`benchmarks/results.json`](benchmarks/results.json).",
        "",
    ]
    lines += [*_targets_section(evaluate(raw, summary)), ""]
    if ANALYSIS.exists() and not raw["quick"]:
        lines += [ANALYSIS.read_text().strip(), ""]
    if "latency" in names:
        lines += [*_latency_section(raw, summary), ""]
    for name in ("cpu", "large"):
        if name in names:
            lines += [*_per_client_section(raw, summary, name), ""]
    if "rate" in names:
        lines += [*_rate_section(raw, summary), ""]
    if "memory" in names:
        lines += [*_memory_section(raw, summary), ""]
    if raw.get("micro"):
        lines += [*_micro_section(raw), ""]
    lines += [METHOD, ""]
    lines += [*_machine_section(raw), ""]
    return "\n".join(lines)


def chart(raw: dict[str, Any], path: Path) -> bool:
    """Draw throughput against concurrency (latency-bound scenario); ``False`` if not run."""
    summary = summarize(raw["runs"])
    scenario = next((s for s in raw["scenarios"] if s["name"] == "latency"), None)
    if scenario is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = scenario["params"]["latency_s"]
    levels = _levels(summary, "latency")
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    axes.plot(levels, [c / seconds for c in levels], "k:", label="ideal: concurrency / latency")
    styles: dict[str, tuple[str, str]] = {
        "sdk": ("o-", "tab:blue"),
        "aiohttp": ("s--", "tab:green"),
        "requests": ("^-", "tab:orange"),
        "httpx": ("v-", "tab:red"),
    }
    for client in _clients(summary, "latency"):
        values = [_find(summary, "latency", client, c).get("throughput") for c in levels]
        points = [(c, v) for c, v in zip(levels, values, strict=True) if v is not None]
        style, color = styles[client]
        axes.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            style,
            color=color,
            label=CLIENT_NAMES[client],
            # The SDK and the floor overlap where latency dominates: draw the SDK on top.
            zorder=3 if client == "sdk" else 2,
            markersize=7 if client == "sdk" else 5,
            markerfacecolor="none" if client == "sdk" else color,
        )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(levels, [str(c) for c in levels])
    axes.set_xlabel("concurrency (requests in flight)")
    axes.set_ylabel("transcripts per second (median)")
    axes.set_title(f"{seconds * 1000:g} ms per request, {scenario['params']['segments']} segments")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True


def write(raw: dict[str, Any], out: Path) -> list[Path]:
    """Write ``out/benchmarks.md``, ``out/benchmarks/results.json`` and the chart."""
    folder = out / "benchmarks"
    folder.mkdir(parents=True, exist_ok=True)
    if out.resolve() == (HERE / ".quick").resolve():
        (out / ".gitignore").write_text("*\n")
    written = []
    results = folder / "results.json"
    results.write_text(json.dumps(raw, indent=1) + "\n")
    written.append(results)
    png = folder / "latency-throughput.png"
    if chart(raw, png):
        written.append(png)
    markdown = out / "benchmarks.md"
    old = markdown.read_text() if markdown.exists() else ""
    text = render(raw)
    for title in KEPT_SECTIONS:
        text = keep_section(old, text, title, before=QUOTA_BEFORE)
    markdown.write_text(text)
    written.append(markdown)
    return written


QUOTA_SECTION = "## Pacing against a strict quota"
"""The section ``quota.py``'s results fill in by hand: a rebuilt report keeps it."""

EXPORT_SECTION = "## The export command, whole process"
"""The section ``export.py``'s results fill in by hand: a rebuilt report keeps it too."""

TELEMETRY_SECTION = "## OpenTelemetry off and on"
"""The section ``telemetry.py``'s results fill in by hand: a rebuilt report keeps it too."""

KEPT_SECTIONS = (QUOTA_SECTION, EXPORT_SECTION, TELEMETRY_SECTION)

QUOTA_BEFORE = "## Memory against the number of ids"


def keep_section(old: str, new: str, title: str, *, before: str) -> str:
    """``new`` with the section ``title`` of ``old`` (up to the next ``## ``) put back
    in front of the section starting with ``before`` (or at the end)."""
    start = old.find(title + "\n")
    if start < 0 or title in new:
        return new
    end = old.find("\n## ", start + len(title))
    section = old[start : len(old) if end < 0 else end + 1].rstrip("\n") + "\n\n"
    at = new.find(before)
    return new + "\n" + section if at < 0 else new[:at] + section + new[at:]


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the report from a saved ``results.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    raw = json.loads(args.results.read_text())
    for path in write(raw, args.out):
        print(f"wrote {path}")
    return 0


Formatter = Callable[[float | None], str]

if __name__ == "__main__":
    sys.exit(main())
