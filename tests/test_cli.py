"""The command line, end to end against a fake server thread, through click's runner."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt
from click.testing import CliRunner, Result

from memories_async import MemoriesClient, TranscriptKind, __version__, read_id_file
from memories_async._cli.app import cli, main
from memories_async._cli.common import DEMO_SEED, Invocation
from memories_async._cli.export import passed_over_line
from memories_async._cli.progress import ExportProgress
from memories_async._export import ExportStats
from memories_async._formats import CSV_HEADER, transcript_from_jsonl_record
from memories_async._sinks import FailureLog
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerOptions,
    FakeServerThread,
    FakeVideo,
    FaultKind,
    FaultRule,
    KeyState,
    Latency,
)
from memories_async.testing._options import COMMAND_LINE_PORT

KEY = "sk-mavi-fake-Zq8x-DISTINCTIVE-w3Kp7"
CREDITLESS_KEY = "sk-mavi-fake-Yr5v-CREDITLESS-n2Jd4"
UNKNOWN = "VI000000000000000001"
SPECIAL = "VI900000000000000001"
SILENT = "VI900000000000000002"


def make_library() -> FakeLibrary:
    lib = FakeLibrary.generate(16, seed=11)
    lib.add(
        FakeVideo(
            SPECIAL,
            visual=[
                FakeSegment(0, 4, "Line one\nline two"),
                FakeSegment(4, 4, "An arrow --> and <b>tags</b> & more"),
                FakeSegment(5, 9, "42"),
            ],
            audio=[FakeSegment(1, 3, ' Hello, "world".'), FakeSegment(3, 7, "=SUM(A1)")],
        ),
        FakeVideo(SILENT, visual=[], audio=None),
    )
    return lib


LIBRARY = make_library()
READY = sorted(video.video_no for video in LIBRARY.videos(status="PARSE"))
IDS = [*READY[:6], SPECIAL, SILENT]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    fake = FakeServer(
        make_library(), api_keys={KEY: KeyState.ACTIVE, CREDITLESS_KEY: KeyState.NO_CREDITS}
    )
    with FakeServerThread(fake) as running:
        yield running


@pytest.fixture
def env(server: FakeServer) -> dict[str, str | None]:
    return {
        "MEMORIES_API_KEY": KEY,
        "MEMORIES_BASE_URL": server.url,
        "MEMORIES_UNIQUE_ID": None,
        "COLUMNS": "120",
    }


def invoke(
    args: Sequence[str], env: dict[str, str | None], *, input: str | bytes | None = None
) -> Result:
    runner = CliRunner()
    result = runner.invoke(
        cli, list(args), env=env, input=input, catch_exceptions=False, obj=Invocation(tuple(args))
    )
    assert KEY not in result.output
    assert KEY not in result.stderr
    return result


def jsonl_pairs(data: bytes) -> Counter[tuple[str, str]]:
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    for record in records:
        transcript_from_jsonl_record(record)
    return Counter((r["video_no"], r["kind"]) for r in records)


def segments(video_no: str, kind: str) -> int:
    return len(LIBRARY[video_no].segments(kind) or ())


def write_ids(path: Path, numbers: Sequence[str]) -> Path:
    path.write_text("".join(f"{n}\n" for n in numbers))
    return path


# -- help ------------------------------------------------------------------------------------


def test_help_and_version(env: dict[str, str | None]) -> None:
    result = invoke(["--help"], env)
    assert result.exit_code == 0
    for command in ("export", "get", "fake-server"):
        assert command in result.stdout
    export_help = " ".join(invoke(["export", "--help"], env).stdout.split())
    for text in ("--ids FILE", "--all", "Exit codes", "resume", "1 to 5", "--demo [N]", "stdout"):
        assert text in export_help, text
    assert "--kind [visual|audio]" in invoke(["get", "--help"], env).stdout
    assert "--fault-rate" in invoke(["fake-server", "--help"], env).stdout
    assert __version__ in invoke(["--version"], env).stdout


def test_main_runs_the_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["memories-async", "--version"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 0
    assert __version__ in capsys.readouterr().out


# -- formats and inputs ----------------------------------------------------------------------


def test_jsonl_to_stdout_from_arguments(env: dict[str, str | None]) -> None:
    result = invoke(["export", *IDS, IDS[0]], env)
    assert result.exit_code == 0, result.output
    assert jsonl_pairs(result.stdout_bytes) == Counter({(n, "visual"): 1 for n in IDS})
    assert "export summary" in result.stderr
    assert "exporting: 8/8 (100%)" in result.stderr


def test_jsonl_to_a_file_from_an_untidy_ids_file(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    body = "# my videos\r\n\r\n" + "".join(f"  {n}  \r\n" for n in IDS) + f"{IDS[0]}\tdup\r\n"
    ids.write_bytes(b"\xef\xbb\xbf" + body.encode())
    out = tmp_path / "out.jsonl"
    result = invoke(
        ["export", "--ids", str(ids), "--out", str(out), "--kind", "both", "--json-summary"],
        env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    assert (summary["exported"], summary["total"], summary["duplicates"]) == (16, 16, 1)
    assert summary["empty"] >= 2
    pairs = jsonl_pairs(out.read_bytes())
    assert pairs == Counter({(n, k): 1 for n in IDS for k in ("visual", "audio")})
    ledger = (tmp_path / "out.jsonl.ledger").read_text().splitlines()
    assert len(ledger) == 17
    assert not (tmp_path / "out.jsonl.failures.tsv").exists()


def test_csv_to_a_file_and_to_stdout(env: dict[str, str | None], tmp_path: Path) -> None:
    out = tmp_path / "segments.csv"
    result = invoke(["export", *IDS, "--format", "csv", "--out", str(out), "--kind", "audio"], env)
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(CSV_HEADER)
    counts = Counter(row[0] for row in rows[1:])
    for number in IDS:
        assert counts[number] == segments(number, "audio")
    special = [row for row in rows if row[0] == SPECIAL]
    assert [row[5] for row in special] == [' Hello, "world".', "=SUM(A1)"]
    to_stdout = invoke(["export", SPECIAL, "--format", "csv", "--out", "-"], env)
    rows = list(csv.reader(io.StringIO(to_stdout.stdout, newline="")))
    assert rows[0] == list(CSV_HEADER)
    assert rows[1][5] == "Line one\nline two"
    assert len(rows) == 4


@pytest.mark.parametrize("fmt", ["srt", "vtt", "txt"])
def test_per_video_files(env: dict[str, str | None], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "subs"
    result = invoke(["export", *IDS, "--format", fmt, "--out", str(out), "--kind", "both"], env)
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(f"{n}.{k}.{fmt}" for n in IDS for k in ("visual", "audio"))
    for number in IDS:
        for kind in ("visual", "audio"):
            text = (out / f"{number}.{kind}.{fmt}").read_text(encoding="utf-8")
            count = segments(number, kind)
            if fmt == "srt":
                assert len(list(srt.parse(text))) == count
            elif fmt == "vtt":
                assert text.startswith("WEBVTT")
                assert len(webvtt.from_string(text).captions) == count
            else:
                assert len(text.splitlines()) == count
    if fmt == "srt":
        cues = list(srt.parse((out / f"{SPECIAL}.visual.srt").read_text()))
        assert cues[0].content == "Line one\nline two"
        assert "->" in cues[1].content
    if fmt == "vtt":
        captions = webvtt.from_string((out / f"{SPECIAL}.visual.vtt").read_text()).captions
        assert "<b>tags</b> & more" in captions[1].text or "&lt;b&gt;" in captions[1].raw_text


def test_ids_from_stdin(env: dict[str, str | None], tmp_path: Path) -> None:
    data = "\ufeff# from a pipe\r\n" + "\r\n".join(IDS) + "\r\n"
    out = tmp_path / "o.jsonl"
    result = invoke(["export", "--ids", "-", "--out", str(out)], env, input=data.encode())
    assert result.exit_code == 0, result.output
    assert jsonl_pairs(out.read_bytes()) == Counter({(n, "visual"): 1 for n in IDS})


def test_a_malformed_stdin_line_stops_with_exit_2_keeping_the_rest(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "o.jsonl"
    data = "\n".join([*IDS[:3], "VI 12", *IDS[3:]]) + "\n"
    result = invoke(["export", "--ids", "-", "--out", str(out)], env, input=data)
    assert result.exit_code == 2
    assert "error: <stdin> line 4: whitespace inside the video number 'VI 12'" in result.stderr
    records = out.read_bytes().splitlines()
    ledger = (tmp_path / "o.jsonl.ledger").read_text().splitlines()
    assert len(records) == len(ledger) - 1


@pytest.mark.realtime
def test_all_lists_the_library(env: dict[str, str | None], tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    result = invoke(["export", "--all", "--out", str(out), "--json-summary", "-q"], env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert set(jsonl_pairs(out.read_bytes())) == {(n, "visual") for n in READY}
    # Every status: the videos not ready are failures, never empty transcripts, and
    # their statuses came with the listing (no lookup).
    every = tmp_path / "every.jsonl"
    result = invoke(["export", "--all", "--status", "any", "--out", str(every)], env)
    assert result.exit_code == 1, result.output
    assert set(jsonl_pairs(every.read_bytes())) == {(n, "visual") for n in READY}
    failures_file = tmp_path / "every.jsonl.failures.tsv"
    failures = [x for x in failures_file.read_text().splitlines() if not x.startswith("#")]
    codes = {line.split("\t")[0]: line.split("\t")[2] for line in failures}
    expected = {
        video.video_no: "processing_failed"
        if video.status in {"PARSE_ERROR", "FAIL", "FAILED"}
        else "not_ready"
        for video in LIBRARY.videos()
        if video.status != "PARSE"
    }
    assert codes == expected
    # A rerun fetches them again, and nothing else.
    again = invoke(["export", "--all", "--status", "any", "--out", str(every), "-q"], env)
    assert again.exit_code == 1
    lines = [x for x in failures_file.read_text().splitlines() if not x.startswith("#")]
    assert len(lines) == 2 * len(expected)


@pytest.mark.realtime
def test_the_summary_says_which_videos_were_not_ready_or_failed(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    statuses = Counter(str(video.status) for video in LIBRARY.videos())
    failed = sum(statuses[word] for word in ("PARSE_ERROR", "FAIL", "FAILED"))
    not_ready = len(LIBRARY) - statuses["PARSE"] - failed
    assert not_ready  # the library has both
    assert failed
    out = tmp_path / "all.jsonl"
    result = invoke(["export", "--all", "--out", str(out), "--json-summary"], env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exported"] == len(READY)
    assert (summary["not_ready"], summary["processing_failed"]) == (not_ready, failed)
    assert summary["passed_over"] == {w: n for w, n in sorted(statuses.items()) if w != "PARSE"}
    stderr = " ".join(result.stderr.split())
    assert f"not ready / failed processing │ {not_ready} / {failed}" in stderr
    assert (
        f"{not_ready + failed} videos of the library were not exported: {not_ready} not ready,"
        f" {failed} failed processing"
    ) in stderr
    # Listing every status passes none over.
    every = invoke(
        [
            "export",
            "--all",
            "--status",
            "any",
            "--out",
            str(tmp_path / "every.jsonl"),
            "--json-summary",
        ],
        env,
    )
    assert json.loads(every.stdout)["passed_over"] == {}
    assert "were not exported" not in every.stderr


def test_the_passed_over_line() -> None:
    assert passed_over_line({}, "PARSE") is None
    assert passed_over_line({"UNPARSE": 1}, "PARSE") == (
        "1 video of the library was not exported: 1 not ready, 0 failed processing"
        " (UNPARSE 1); --all lists the videos in status PARSE (see --status)"
    )


@pytest.mark.realtime
def test_demo_needs_no_key_nor_server(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env: dict[str, str | None] = {"MEMORIES_API_KEY": None, "MEMORIES_BASE_URL": None}
    result = invoke(["export", "--demo", "12", "--format", "srt", "--out", str(out)], env)
    assert result.exit_code == 0, result.output
    assert "demo: a fake service with 12 videos" in result.stderr
    files = list(out.iterdir())
    assert files
    for path in files:
        list(srt.parse(path.read_text()))
    stdout_run = invoke(["export", "--demo", "3", "-q"], env)
    assert stdout_run.exit_code == 0, stdout_run.output
    assert len(jsonl_pairs(stdout_run.stdout_bytes)) >= 1


@pytest.mark.realtime
def test_the_demo_of_wait_has_videos_that_finish_processing(tmp_path: Path) -> None:
    library = FakeLibrary.generate(40, seed=DEMO_SEED)
    pending = [video.video_no for video in library if video.status == "UNPARSE"]
    ready = [video.video_no for video in library if video.status == "PARSE"]
    assert pending  # the demo's library has videos to wait for
    out = tmp_path / "waited.jsonl"
    env: dict[str, str | None] = {"MEMORIES_API_KEY": None, "MEMORIES_BASE_URL": None}
    args = ["export", "--demo", "40", "--wait", "--poll", "0.2", "--out", str(out)]
    result = invoke([*args, "--json-summary", "--failures", str(tmp_path / "f.tsv")], env)
    assert result.exit_code == 1, result.output  # the videos whose processing failed
    assert f"its {len(pending)} videos still processing finish over the next" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["waited"] == len(pending)
    assert summary["exported"] == len(ready) + len(pending)
    assert summary["failed"] == len(library) - len(ready) - len(pending)
    assert Counter(n for n, _ in jsonl_pairs(out.read_bytes())) == Counter([*ready, *pending])


# -- resume and failures ---------------------------------------------------------------------


@pytest.mark.realtime
def test_a_rerun_skips_what_is_done(env: dict[str, str | None], tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    args = ["export", *IDS[:4], "--out", str(out), "--json-summary"]
    assert invoke(args, env).exit_code == 0
    args[1:5] = IDS
    second = invoke(args, env)
    summary = json.loads(second.stdout)
    assert (summary["exported"], summary["skipped"]) == (len(IDS) - 4, 4)
    assert "resuming: " in second.stderr
    assert jsonl_pairs(out.read_bytes()) == Counter({(n, "visual"): 1 for n in IDS})


@pytest.mark.realtime
def test_failures_exit_1_and_the_failures_file_can_be_retried(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "o.jsonl"
    result = invoke(["export", *IDS[:3], UNKNOWN, "--out", str(out), "--attempts", "2"], env)
    assert result.exit_code == 1
    assert f"failed: {UNKNOWN} visual: API error 0001" in result.stderr
    failures = tmp_path / "o.jsonl.failures.tsv"
    lines = failures.read_text().splitlines()
    assert lines[0].startswith("# memories-async export")
    assert lines[1].startswith(f"{UNKNOWN}\tvisual\t0001\t2\t")
    retry = invoke(["export", "--ids", str(failures), "--out", str(out), "--json-summary"], env)
    assert retry.exit_code == 1
    summary = json.loads(retry.stdout)
    assert (summary["exported"], summary["failed"], summary["total"]) == (0, 1, 1)
    assert summary["failures_file"] == str(failures)
    assert len(failures.read_text().splitlines()) == 4


@pytest.mark.realtime
def test_the_documented_retry_recipe_retries_exactly_the_failed_pairs(tmp_path: Path) -> None:
    # Some audio failures of videos whose visual passed, some visual failures of videos
    # whose audio passed: `export --ids OUT.failures.tsv --out OUT` retries those pairs.
    audio_fails, visual_fails = set(READY[:3]), set(READY[3:5])
    faults = [
        FaultRule(
            FaultKind.HTTP_503,
            video_nos=audio_fails,
            endpoints={"get_audio_transcription"},
            first_attempts=2,
        ),
        FaultRule(
            FaultKind.HTTP_503,
            video_nos=visual_fails,
            endpoints={"get_video_transcription"},
            first_attempts=2,
        ),
    ]
    fake = FakeServer(make_library(), api_keys={KEY: KeyState.ACTIVE}, faults=faults)
    with FakeServerThread(fake) as running:
        env: dict[str, str | None] = {"MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": running.url}
        out = tmp_path / "lib.jsonl"
        args = ["export", "--all", "--kind", "both", "--out", str(out), "--attempts", "2"]
        first = invoke([*args, "--json-summary"], env)
        assert first.exit_code == 1, first.output
        assert json.loads(first.stdout)["failed"] == 5
        failures = tmp_path / "lib.jsonl.failures.tsv"
        retry = invoke(["export", "--ids", str(failures), "--out", str(out), "--json-summary"], env)
    assert retry.exit_code == 0, retry.output
    summary = json.loads(retry.stdout)
    assert (summary["exported"], summary["failed"], summary["skipped"]) == (5, 0, 0)
    assert summary["pairs"] == 5
    assert "(video, kind) pairs asked for by line" in retry.stderr
    pairs = jsonl_pairs(out.read_bytes())
    assert pairs == Counter({(n, k): 1 for n in READY for k in ("visual", "audio")})


def test_failures_to_a_chosen_file_for_stdout_runs(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    failures = tmp_path / "f.tsv"
    result = invoke(["export", UNKNOWN, "--failures", str(failures), "--attempts", "1"], env)
    assert result.exit_code == 1
    assert failures.read_text().splitlines()[1].startswith(f"{UNKNOWN}\tvisual\t0001\t1\t")


@pytest.mark.realtime
def test_many_failures_are_summarised(env: dict[str, str | None], tmp_path: Path) -> None:
    unknown = [f"VI0000000000000001{n:02d}" for n in range(25)]
    result = invoke(["export", *unknown, "--out", str(tmp_path / "o.csv"), "--attempts", "1"], env)
    assert result.exit_code == 1
    assert result.stderr.count("failed: VI") == 20
    assert "further failures are counted, not printed" in result.stderr
    assert len((tmp_path / "o.csv.failures.tsv").read_text().splitlines()) == 26


# -- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export"], "nothing to export"),
        (["export", "VI1", "--all"], "not several"),
        (["export", "--ids", "x", "--all"], "not several"),
        (["export", "VI1", "--status", "PARSE"], "--status only applies with --all"),
        (["export", "--all", "--status", " "], "--status must not be empty"),
        (["export", "VI1", "--format", "srt"], "pass --out DIR"),
        (["export", "VI1", "--format", "vtt", "--out", "-"], "pass --out DIR"),
        (["export", "VI1", "--json-summary"], "--json-summary prints on stdout"),
        (["export", "--demo", "--base-url", "http://x"], "drop --base-url"),
        (["export", "VI1", "--format", "pdf"], "'pdf' is not one of"),
        (["export", "VI1", "--concurrency", "0"], "0 is not in the range"),
        (["export", "VI1", "--rate", "0"], "0.0 is not in the range"),
        (["get"], "missing VIDEO_NO"),
        (["get", "--demo", "--api-key-file", "k"], "drop --base-url"),
        (["fake-server", "--fault-rate", "0.5", "--fault-kinds", "meteor"], "meteor"),
    ],
)
def test_usage_errors_exit_2(env: dict[str, str | None], args: list[str], message: str) -> None:
    result = invoke(args, env)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no key", "no API key: set MEMORIES_API_KEY or pass --api-key-file FILE"),
        ("missing key file", "cannot read --api-key-file"),
        ("empty key file", "is empty: its first line must hold the key"),
        ("bearer key", "drop the 'Bearer ' prefix"),
        ("bad base url", "base_url must start with http"),
        ("credentials in the base url", "base_url must not hold credentials"),
        ("bad argument", "argument line 2: a video number must not hold whitespace"),
        ("malformed ids", "ids.txt line 3: whitespace inside the video number 'VI 3'"),
        ("missing ids", "cannot read --ids"),
        ("foreign output", "was not written by an export"),
        ("ids are the output", "--ids and --out both name"),
        ("rejected key", "API error 0401"),
    ],
)
def test_configuration_errors_exit_2_in_one_line(
    env: dict[str, str | None], tmp_path: Path, setup: str, message: str
) -> None:
    out = tmp_path / "o.jsonl"
    args = ["export", IDS[0], "--out", str(out)]
    if setup == "no key":
        env["MEMORIES_API_KEY"] = None
    elif setup == "missing key file":
        args += ["--api-key-file", str(tmp_path / "nope")]
    elif setup == "empty key file":
        (tmp_path / "key").write_text("\n")
        args += ["--api-key-file", str(tmp_path / "key")]
    elif setup == "bearer key":
        env["MEMORIES_API_KEY"] = f"Bearer {KEY}"
    elif setup == "bad base url":
        args += ["--base-url", "ftp://nowhere"]
    elif setup == "credentials in the base url":
        args += ["--base-url", "http://user:s3cret-pw@127.0.0.1:9"]
    elif setup == "bad argument":
        args.insert(2, "VI\t2")
    elif setup == "malformed ids":
        ids = tmp_path / "ids.txt"
        ids.write_text(f"{IDS[0]}\n# fine\nVI 3\n")
        args = ["export", "--ids", str(ids), "--out", str(out)]
    elif setup == "missing ids":
        args = ["export", "--ids", str(tmp_path / "nope.txt"), "--out", str(out)]
    elif setup == "ids are the output":
        out.write_text(f"{IDS[0]}\n")
        args = ["export", "--ids", str(out), "--out", str(out)]
    elif setup == "foreign output":
        out.write_text("precious\n")
    elif setup == "rejected key":
        env["MEMORIES_API_KEY"] = "sk-mavi-not-accepted-key"
    result = invoke(args, env)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.output
    if setup not in ("foreign output", "rejected key", "ids are the output"):
        assert not out.exists()  # nothing was created before the error
    if setup == "rejected key":
        assert "sk-mavi-not-accepted-key" not in result.output
    assert "s3cret" not in result.output


@pytest.mark.realtime
def test_an_account_error_halts_with_exit_1_and_a_hint(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    env["MEMORIES_API_KEY"] = CREDITLESS_KEY
    result = invoke(["export", *IDS, "--out", str(tmp_path / "o.jsonl")], env)
    assert result.exit_code == 1
    assert "error: batch stopped: API error 0402" in result.stderr
    assert "stopped: every transcript written so far is safe" in result.stderr
    assert CREDITLESS_KEY not in result.output


def test_a_closed_stdout_is_reported(
    env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Closed(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("memories_async._cli.export.binary_stdout", Closed)
    monkeypatch.setattr("memories_async._cli.common.binary_stdout", Closed)
    result = invoke(["export", *IDS[:2]], env)
    assert result.exit_code == 1
    assert "error: stdout was closed before the export ended" in result.stderr
    get_result = invoke(["get", IDS[0]], env)
    assert get_result.exit_code == 1
    assert "cannot write the output" in get_result.stderr


def test_a_write_error_mid_run_exits_1(
    env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: object, transcript: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("memories_async._sinks.DirectorySink.commit", full_disk)
    result = invoke(["export", IDS[0], "--format", "txt", "--out", str(tmp_path / "d")], env)
    assert result.exit_code == 1
    assert "error: cannot write the output: [Errno 28] No space left on device" in result.stderr


# -- the key never shows ---------------------------------------------------------------------


@pytest.mark.realtime
def test_the_key_appears_nowhere(
    env: dict[str, str | None], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"  {KEY}  \nsecond line ignored\n")
    env["MEMORIES_API_KEY"] = None
    caplog.set_level(logging.DEBUG, logger="memories_async")
    common = ["--api-key-file", str(key_file), "-vv"]
    runs = [
        ["export", *IDS[:3], UNKNOWN, "--out", str(tmp_path / "o.jsonl"), "--json-summary"],
        ["export", *IDS[:2], "--format", "srt", "--out", str(tmp_path / "srt")],
        ["export", "--all", "--format", "csv"],
        ["get", IDS[0], "--format", "vtt"],
    ]
    for args in runs:
        result = invoke([*args, *common], env)
        assert result.exit_code in (0, 1), result.output
        assert "DEBUG memories_async" in result.stderr
    assert KEY not in caplog.text
    assert "get_video_transcription" in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != key_file:
            assert KEY.encode() not in path.read_bytes(), path


def test_retries_show_in_the_summary_and_the_verbose_log(tmp_path: Path) -> None:
    fake = FakeServer(
        make_library(),
        api_keys=[KEY],
        faults=[FaultRule(FaultKind.HTTP_503, first_attempts=1)],
    )
    with FakeServerThread(fake) as running:
        env: dict[str, str | None] = {"MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": running.url}
        result = invoke(
            ["export", *IDS[:3], "--out", str(tmp_path / "o.jsonl"), "--json-summary", "-v"], env
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["retries"] == 3
    assert "WARNING memories_async: retrying after attempt 1" in result.stderr


# -- get -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "srt", "vtt", "txt"])
def test_get_prints_one_transcript(env: dict[str, str | None], fmt: str) -> None:
    result = invoke(["get", SPECIAL, "--kind", "audio", "--format", fmt], env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "jsonl":
        assert json.loads(out)["segment_count"] == 2
    elif fmt == "csv":
        assert next(csv.reader(io.StringIO(out, newline=""))) == list(CSV_HEADER)
    elif fmt == "srt":
        assert len(list(srt.parse(out))) == 2
    elif fmt == "vtt":
        assert len(webvtt.from_string(out).captions) == 2
    else:
        assert out == 'Hello, "world".\n=SUM(A1)\n'


def test_get_errors(env: dict[str, str | None]) -> None:
    unknown = invoke(["get", UNKNOWN, "--attempts", "1"], env)
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: API error 0001: video not found")
    assert invoke(["get", "VI 1"], env).exit_code == 2
    env["MEMORIES_API_KEY"] = "sk-mavi-not-accepted-key"
    rejected = invoke(["get", IDS[0]], env)
    assert rejected.exit_code == 2
    assert "API error 0401" in rejected.stderr
    env["MEMORIES_API_KEY"] = None
    assert "no API key" in invoke(["get", IDS[0]], env).stderr


def test_get_demo() -> None:
    result = invoke(["get", "--demo", "--format", "txt"], {"MEMORIES_API_KEY": None})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


# -- fake-server -----------------------------------------------------------------------------


def test_fake_server_reports_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(["fake-server", "--port", str(port), "--videos", "1"], {})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")


# -- interrupts, in process ------------------------------------------------------------------


def interrupt_after(monkeypatch: pytest.MonkeyPatch, exported: int) -> None:
    """Send SIGINT to this process once ``exported`` transcripts are committed."""
    original = ExportProgress.update
    sent: list[bool] = []

    def update(self: ExportProgress, stats: ExportStats) -> None:
        original(self, stats)
        if stats.exported >= exported and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ExportProgress, "update", update)


@pytest.fixture
def slow_env(tmp_path: Path) -> Iterator[dict[str, str | None]]:
    fake = FakeServer(make_library(), api_keys=[KEY], latency=Latency.fixed(0.01))
    with FakeServerThread(fake) as running:
        yield {"MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": running.url}


@pytest.mark.realtime
def test_ctrl_c_exits_130_with_the_resume_command(
    slow_env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "o.jsonl"
    interrupt_after(monkeypatch, 2)
    args = ["export", "--ids", "-", "--out", str(out), "--kind", "both", "--concurrency", "1"]
    result = invoke([*args, "--json-summary"], slow_env, input="\n".join(IDS))
    assert result.exit_code == 130
    summary = json.loads(result.stdout)
    assert summary["status"] == "interrupted"
    assert 2 <= summary["exported"] < 2 * len(IDS)
    assert "interrupted: every transcript written so far is safe in" in result.stderr
    assert "resume with (with the same input on stdin):" in result.stderr
    assert "memories-async export --ids - --out" in result.stderr
    assert len(out.read_bytes().splitlines()) == summary["exported"]
    monkeypatch.undo()
    rest = invoke(args, slow_env, input="\n".join(IDS))
    assert rest.exit_code == 0
    assert len(out.read_bytes().splitlines()) == 2 * len(IDS)


def test_ctrl_c_on_stdout_says_it_cannot_resume(
    slow_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_after(monkeypatch, 1)
    result = invoke(["export", *IDS, "--concurrency", "1", "-q"], slow_env)
    assert result.exit_code == 130
    assert "the output went to stdout, which cannot resume" in result.stderr


def test_ctrl_c_during_get(env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(3600)

    monkeypatch.setattr(MemoriesClient, "get_transcription", interrupted)
    result = invoke(["get", IDS[0]], env)
    assert result.exit_code == 130
    assert result.stderr == "interrupted\n"


def test_ctrl_c_before_the_first_request(
    env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("memories_async._cli.export.count_pending", interrupted)
    ids = write_ids(tmp_path / "ids.txt", IDS)
    result = invoke(["export", "--ids", str(ids), "--out", str(tmp_path / "o.jsonl")], env)
    assert result.exit_code == 130
    assert "interrupted before any request was made" in result.stderr


@pytest.mark.realtime
def test_a_halt_on_stdout_says_it_cannot_resume(env: dict[str, str | None]) -> None:
    env["MEMORIES_API_KEY"] = CREDITLESS_KEY
    result = invoke(["export", *IDS], env)
    assert result.exit_code == 1
    assert "stopped: the output went to stdout, which cannot resume" in result.stderr


# -- more inputs and settings ----------------------------------------------------------------


def test_ids_from_a_fifo(env: dict[str, str | None], tmp_path: Path) -> None:
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)

    def produce() -> None:
        with fifo.open("w") as writer:
            writer.write("\n".join(IDS) + "\n")

    producer = threading.Thread(target=produce)
    producer.start()
    out = tmp_path / "o.jsonl"
    result = invoke(["export", "--ids", str(fifo), "--out", str(out), "--json-summary"], env)
    producer.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exported"] == len(IDS)


def test_another_namespace_gives_empty_transcripts(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "o.jsonl"
    result = invoke(
        ["export", *IDS[:3], "--unique-id", "elsewhere", "--out", str(out), "--json-summary"],
        env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["empty"] == 3
    listing = invoke(["export", "--all", "--unique-id", "elsewhere", "-q"], env)
    assert listing.exit_code == 0
    assert listing.stdout == ""


def test_settings_reach_the_client(env: dict[str, str | None], tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    result = invoke(
        [
            *("export", *IDS[:2], "--out", str(out), "--rate", "50", "--timeout", "5"),
            *("--concurrency", "3", "--attempts", "1", "--json-summary"),
        ],
        env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exported"] == 2


def test_a_key_file_that_is_not_text(env: dict[str, str | None], tmp_path: Path) -> None:
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(b"\xff\xfe\x00")
    result = invoke(["get", IDS[0], "--api-key-file", str(key_file)], env)
    assert result.exit_code == 2
    assert "is not UTF-8 text" in result.stderr


def test_fake_server_announces_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    class Running:
        url = "http://127.0.0.1:5555"
        api_key = "sk-test-fake-key"
        library = FakeLibrary.generate(3)

    def run(options: FakeServerOptions, /, *, on_ready: Callable[[Any], object]) -> None:
        assert options.videos == 3
        assert options.port == COMMAND_LINE_PORT
        assert options.fault_kinds == (FaultKind.HTTP_503, FaultKind.HANG)
        assert options.api_keys == ("sk-a", "sk-b")
        on_ready(Running())

    monkeypatch.setattr("memories_async.testing._command.run_fake_server", run)
    result = invoke(
        [
            *("fake-server", "--videos", "3", "--fault-kinds", "http_503, hang,"),
            *("--api-key", "sk-a", "--api-key", "sk-b"),
        ],
        {},
    )
    assert result.exit_code == 0
    assert result.stdout == "http://127.0.0.1:5555\n"
    assert "api key: sk-test-fake-key" in result.stderr
    assert "3 videos" in result.stderr


def test_a_rejected_key_while_listing_exits_2(env: dict[str, str | None], tmp_path: Path) -> None:
    env["MEMORIES_API_KEY"] = "sk-mavi-not-accepted-key"
    result = invoke(["export", "--all", "--out", str(tmp_path / "o.jsonl"), "-q"], env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: API error 0401: Authorization invalid")
    assert "resume with:" in result.stderr


# -- outputs and failures files that cannot work (refused before anything is written) ------------


@pytest.mark.parametrize("fmt", ["jsonl", "srt"])
def test_an_output_is_refused_where_it_cannot_be_locked(
    env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError
    out = tmp_path / ("o.jsonl" if fmt == "jsonl" else "subtitles")
    result = invoke(["export", *IDS[:2], "--format", fmt, "--out", str(out), "-q"], env)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot lock {out}: this platform has no file locking")
    written = sorted(
        path.name for path in tmp_path.rglob("*") if path.is_file() and path.stat().st_size
    )
    assert written == []  # nothing written unlocked
    # Standard output needs no lock.
    to_stdout = invoke(["export", *IDS[:2], "-q"], env)
    assert to_stdout.exit_code == 0, to_stdout.output
    assert len(jsonl_pairs(to_stdout.stdout_bytes)) == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("failures are the output", "is the output"),
        ("failures are the output, by another path", "is the output"),
        ("failures are a hard link to the output", "is the output"),
        ("failures are the ledger", "is the output's ledger"),
        ("failures are a directory", "is a directory, not a regular file"),
        ("failures under a file", "a part of its path is a file"),
        ("output is a FIFO", "is a FIFO, not a regular file"),
        ("output is a device", "is a character device, not a regular file"),
        ("ledger is a directory", "is a directory, not a regular file"),
    ],
)
def test_outputs_that_cannot_work_are_refused_at_start(
    env: dict[str, str | None], tmp_path: Path, setup: str, message: str
) -> None:
    out = tmp_path / "o.jsonl"
    args = ["export", IDS[0], IDS[1], "--out", str(out)]
    if setup == "failures are the output":
        args += ["--failures", str(out)]
    elif setup == "failures are the output, by another path":
        (tmp_path / "link").symlink_to(tmp_path)
        args += ["--failures", f"{tmp_path}/link/./o.jsonl"]
    elif setup == "failures are a hard link to the output":
        invoke(["export", IDS[0], "--out", str(out)], env)
        os.link(out, tmp_path / "hard.tsv")
        args += ["--failures", str(tmp_path / "hard.tsv")]
    elif setup == "failures are the ledger":
        args += ["--failures", f"{out}.ledger"]
    elif setup == "failures are a directory":
        (tmp_path / "f").mkdir()
        args += ["--failures", str(tmp_path / "f")]
    elif setup == "failures under a file":
        (tmp_path / "plain").write_text("x")
        args += ["--failures", str(tmp_path / "plain" / "f.tsv")]
    elif setup == "output is a FIFO":
        out = tmp_path / "fifo"
        os.mkfifo(out)
        args = ["export", IDS[0], "--out", str(out)]
    elif setup == "output is a device":
        out = Path("/dev/null")
        args = ["export", IDS[0], "--out", str(out)]
    elif setup == "ledger is a directory":
        (tmp_path / "o.jsonl.ledger").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    data = out.read_bytes() if out.is_file() else None
    result = invoke(args, env)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    # Nothing written, nothing created (no /dev/null.ledger either).
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if data is not None:
        assert out.read_bytes() == data
    assert not Path("/dev/null.ledger").exists()


def test_a_number_that_would_break_the_failures_file_is_written_as_a_comment(
    tmp_path: Path,
) -> None:
    # A hostile listing can name anything; the failures file stays a valid id file.
    failures = tmp_path / "f.tsv"
    log = FailureLog(str(failures))
    try:
        log.record("VI1\tvisual\nVI2", TranscriptKind.AUDIO, "invalid_id", 0, "bad")
        log.record("VI3", TranscriptKind.AUDIO, "0001", 1, "gone")
        log.record("VI\x004", TranscriptKind.VISUAL, "invalid_id", 0, "bad")
    finally:
        log.close()
    text = failures.read_text()
    assert "# not a video number: 'VI1\\tvisual\\nVI2'\taudio" in text
    assert "# not a video number: 'VI\\x004'\tvisual" in text
    assert list(read_id_file(failures)) == [("VI3", TranscriptKind.AUDIO)]


@pytest.mark.parametrize("exists", [False, True])
def test_an_unwritable_failures_file_is_refused_at_start(
    env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    # As a user without the right to write there (the tests may run as root).
    failures = tmp_path / "ro" / "f.tsv"
    failures.parent.mkdir()
    if exists:
        failures.write_text("")
    monkeypatch.setattr("os.access", lambda path, mode: False)
    out = tmp_path / "o.jsonl"
    result = invoke(["export", IDS[0], "--out", str(out), "--failures", str(failures)], env)
    assert result.exit_code == 2
    expected = "permission denied" if exists else f"{failures.parent} is not writable"
    assert expected in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("fault", [FaultKind.HTTP_401, FaultKind.HTTP_403])
def test_a_gateway_refusing_the_key_stops_the_export_at_once(
    tmp_path: Path, fault: FaultKind
) -> None:
    # No JSON envelope, only a gateway's page: still no call of this key can pass, so
    # the export stops (exit 2) instead of failing a hundred videos one by one.
    fake = FakeServer(make_library(), api_keys=[KEY], faults=[FaultRule(fault)])
    ids = write_ids(tmp_path / "ids.txt", [f"VI{600000000000000000 + n}" for n in range(100)])
    with FakeServerThread(fake) as running:
        env: dict[str, str | None] = {"MEMORIES_API_KEY": KEY, "MEMORIES_BASE_URL": running.url}
        out = tmp_path / "o.jsonl"
        result = invoke(["export", "--ids", str(ids), "--out", str(out), "--concurrency", "4"], env)
        requests = sum(fake.stats.requests.values())
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert f"HTTP {fault.value.removeprefix('http_')}" in errors[0]
    assert "check MEMORIES_API_KEY" in errors[0]
    assert requests <= 4  # those in flight when the first answer came
    failures = tmp_path / "o.jsonl.failures.tsv"
    assert not failures.exists() or len(failures.read_text().splitlines()) <= 1


def test_a_huge_key_file_is_refused_without_reading_it_whole(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"sk-" + b"x" * (8 * 1024 * 1024))
    result = invoke(["export", IDS[0], "--api-key-file", str(key_file)], env)
    assert result.exit_code == 2
    assert "does not start with an API key" in result.stderr
    assert "xxxxxxxx" not in result.output
    env["MEMORIES_API_KEY"] = "sk-" + "y" * 5000
    result = invoke(["export", IDS[0], "--out", str(tmp_path / "o.jsonl")], env)
    assert result.exit_code == 2
    assert "characters long, more than 1,024" in result.stderr
    assert "yyyyyyyy" not in result.output


def test_a_ledger_cut_to_its_header_loses_no_transcript(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "o.jsonl"
    ledger = tmp_path / "o.jsonl.ledger"
    assert invoke(["export", *IDS[:5], "--out", str(out)], env).exit_code == 0
    header = ledger.read_bytes().splitlines(keepends=True)[0]
    ledger.write_bytes(header)  # cut back by hand: the five records are still in the data
    result = invoke(["export", IDS[5], "--out", str(out), "--json-summary"], env)
    assert result.exit_code == 0, result.output
    assert "recorded 5 whole transcripts written after the last commit" in result.stderr
    assert jsonl_pairs(out.read_bytes()) == Counter({(n, "visual"): 1 for n in IDS[:6]})
    assert len(ledger.read_bytes().splitlines()) == 7


@pytest.mark.parametrize(("fmt", "what"), [("jsonl", "an unfinished record"), ("csv", "rows")])
def test_the_resume_note_says_what_was_dropped(
    env: dict[str, str | None], tmp_path: Path, fmt: str, what: str
) -> None:
    out = tmp_path / f"o.{fmt}"
    assert invoke(["export", IDS[0], "--out", str(out), "--format", fmt], env).exit_code == 0
    with out.open("ab") as data:
        data.write(b'{"schema": 1, "vid' if fmt == "jsonl" else b"VI9,visual,0,0.0,1.0,a\r\nVI9,")
    result = invoke(["export", IDS[0], IDS[1], "--out", str(out), "--format", fmt], env)
    assert result.exit_code == 0, result.output
    assert f"bytes of {what} written after the last commit" in result.stderr


def test_attempts_is_the_library_setting_and_retries_its_deprecated_spelling(
    env: dict[str, str | None],
) -> None:
    from memories_async import RetryPolicy
    from memories_async._cli.common import ServiceOptions, retry_policy

    assert retry_policy(3).attempts == 3
    assert retry_policy(1).transient_attempts == 1
    assert ServiceOptions().attempts_asked() == RetryPolicy().attempts
    assert ServiceOptions(retries=2).attempts_asked() == 3
    result = invoke(["get", UNKNOWN, "--retries", "0"], env)
    assert "--retries is deprecated: use --attempts 1" in result.stderr
    both = invoke(["get", UNKNOWN, "--retries", "0", "--attempts", "2"], env)
    assert both.exit_code == 2
    assert "give --attempts only" in both.stderr
