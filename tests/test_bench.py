"""``memories-async bench``: the sweep, its outputs, option checks, and the key kept secret."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memories_async import Config
from memories_async._bench import (
    CSV_COLUMNS,
    LevelResult,
    measure_level,
    parse_levels,
    suggestions,
)
from memories_async._cli.bench import bench
from memories_async.testing import FakeLibrary, FakeServer, FakeServerThread, KeyState

SECRET = "sk-bench-secret-7f3a9c"
BROKE = "sk-bench-no-credits-51e0aa"
HEADERS = ("concurrency", "requests", "ok", "errors", "transcripts/s", "p50 ms", "p99 ms", "0429 %")
FAST = ["--latency", "0", "--videos", "20", "--requests", "6"]


def invoke(
    *args: str, env: dict[str, str | None] | None = None, input: str | None = None
) -> Result:
    """Run the command the way the ``memories-async`` group will, without a real key around."""
    environment: dict[str, str | None] = {
        "MEMORIES_API_KEY": None,
        "MEMORIES_BASE_URL": None,
        "MEMORIES_UNIQUE_ID": None,
    }
    environment.update(env or {})
    return CliRunner().invoke(bench, list(args), env=environment, input=input)


@pytest.fixture(scope="module")
def account() -> Iterator[FakeServer]:
    """A fake account whose only key is :data:`SECRET`."""
    server = FakeServer(
        FakeLibrary.generate(12, seed=3),
        api_keys={SECRET: KeyState.ACTIVE, BROKE: KeyState.NO_CREDITS},
    )
    with FakeServerThread(server) as running:
        yield running


@pytest.fixture
def ids_file(tmp_path: Path, account: FakeServer) -> Path:
    """The private video numbers of :func:`account`, one per line."""
    path = tmp_path / "ids.txt"
    numbers = [v.video_no for v in account.library if not v.is_public]
    path.write_text("# ids\n" + "\n".join(numbers) + "\n")
    return path


# -- against the embedded fake ----------------------------------------------------------------


@pytest.mark.realtime
def test_sweep_prints_every_level_and_writes_csv_and_json(tmp_path: Path) -> None:
    out_csv, out_json = tmp_path / "levels.csv", tmp_path / "levels.json"
    result = invoke("--concurrency", "3,1", *FAST, "--csv", str(out_csv), "--json", str(out_json))

    assert result.exit_code == 0, result.output
    for header in HEADERS:
        assert header in result.stdout
    assert "embedded fake server" in result.stdout
    assert "suggested --concurrency" in result.stdout
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["concurrency"] for row in rows] == ["1", "3"]
    assert all(row["requests"] == "6" and row["succeeded"] == "6" for row in rows)
    document = json.loads(out_json.read_text())
    assert document["settings"]["target"] == "fake"
    assert document["settings"]["levels"] == [1, 3]
    assert [level["failed"] for level in document["levels"]] == [0, 0]
    assert document["suggestions"]


@pytest.mark.realtime
def test_faults_show_as_retries(tmp_path: Path) -> None:
    out_json = tmp_path / "levels.json"
    result = invoke(
        "--concurrency",
        "12",
        "--latency",
        "0",
        "--videos",
        "20",
        "--requests",
        "12",
        "--fault-rate",
        "0.5",
        "--json",
        str(out_json),
    )

    assert result.exit_code == 0, result.output
    (level,) = json.loads(out_json.read_text())["levels"]
    assert level["retries"] >= 1
    assert level["attempts"] > level["requests"]


@pytest.mark.realtime
def test_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "sweep.png"

    result = invoke("--concurrency", "1,2", *FAST, "--chart", str(chart))

    assert result.exit_code == 0, result.output
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_chart_without_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    result = invoke("--concurrency", "1", *FAST, "--chart", str(tmp_path / "x.png"))

    assert result.exit_code == 1
    assert "pip install 'memories-async[bench]'" in result.output
    assert "concurrency" not in result.stdout  # stopped before sweeping
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.realtime
def test_fake_server_in_a_child_process() -> None:
    result = invoke("--concurrency", "2", *FAST, "--server", "process")

    assert result.exit_code == 0, result.output
    assert "process" in result.stdout


# -- against an account --------------------------------------------------------------------


@pytest.mark.realtime
def test_account_sweep_never_prints_the_key(
    account: FakeServer, ids_file: Path, tmp_path: Path
) -> None:
    out_json = tmp_path / "levels.json"
    result = invoke(
        "--ids",
        str(ids_file),
        "--base-url",
        account.url,
        "--concurrency",
        "1,4",
        "--requests",
        "8",
        "--json",
        str(out_json),
        env={"MEMORIES_API_KEY": SECRET},
    )

    assert result.exit_code == 0, result.output
    assert account.url in result.stdout
    document = json.loads(out_json.read_text())
    assert document["settings"]["target"] == "account"
    assert [level["succeeded"] for level in document["levels"]] == [8, 8]
    assert SECRET not in result.output
    assert SECRET not in out_json.read_text()


def test_key_from_a_file(account: FakeServer, ids_file: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")

    result = invoke(
        "--ids",
        str(ids_file),
        "--base-url",
        account.url,
        "--api-key-file",
        str(key_file),
        "--concurrency",
        "2",
        "--requests",
        "4",
    )

    assert result.exit_code == 0, result.output
    assert SECRET not in result.output


def test_rejected_key_is_a_usage_error_that_hides_the_key(
    account: FakeServer, ids_file: Path
) -> None:
    wrong = "sk-wrong-key-4d2e1b"

    result = invoke(
        "--ids",
        str(ids_file),
        "--base-url",
        account.url,
        "--concurrency",
        "2",
        "--requests",
        "4",
        env={"MEMORIES_API_KEY": wrong},
    )

    assert result.exit_code == 2
    assert "0401" in result.output
    assert wrong not in result.output
    assert SECRET not in result.output


def test_failed_requests_are_counted_by_kind(
    account: FakeServer, ids_file: Path, tmp_path: Path
) -> None:
    # The fake refuses a number with a dot as a parameter error (0003), which is not retried.
    ids = tmp_path / "mixed.txt"
    ids.write_text(ids_file.read_text() + "VI.0001\n")
    out_json = tmp_path / "levels.json"

    result = invoke(
        "--ids",
        str(ids),
        "--base-url",
        account.url,
        "--concurrency",
        "4",
        "--requests",
        "13",
        "--json",
        str(out_json),
        env={"MEMORIES_API_KEY": SECRET},
    )

    assert result.exit_code == 0, result.output
    (level,) = json.loads(out_json.read_text())["levels"]
    assert level["failed"] == 1
    assert level["errors"] == {"InvalidParameterError 0003": 1}
    assert "1 transcript(s) failed" in result.stdout


def test_account_out_of_credits_exits_1(account: FakeServer, ids_file: Path) -> None:
    result = invoke(
        "--ids",
        str(ids_file),
        "--base-url",
        account.url,
        "--requests",
        "2",
        env={"MEMORIES_API_KEY": BROKE},
    )

    assert result.exit_code == 1
    assert "0402" in result.output
    assert BROKE not in result.output


@pytest.mark.realtime
def test_unwritable_output_exits_1(tmp_path: Path) -> None:
    result = invoke("--concurrency", "1", *FAST, "--csv", str(tmp_path / "missing" / "x.csv"))

    assert result.exit_code == 1
    assert "cannot write" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key-file", "EMPTY"], "is empty"),
        (["--api-key-file", "MISSING"], "cannot read --api-key-file"),
        (["--base-url", "ftp://example.org"], "base_url must start with http"),
    ],
)
def test_bad_account_settings(
    ids_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "EMPTY").write_text("\n")
    args = [str(tmp_path / a) if a in ("EMPTY", "MISSING") else a for a in args]

    result = invoke("--ids", str(ids_file), *args, env={"MEMORIES_API_KEY": SECRET})

    assert result.exit_code == 2
    assert message in result.output
    assert SECRET not in result.output


def test_ids_from_stdin(account: FakeServer, ids_file: Path) -> None:
    result = invoke(
        "--ids",
        "-",
        "--base-url",
        account.url,
        "--concurrency",
        "2",
        "--requests",
        "3",
        env={"MEMORIES_API_KEY": SECRET},
        input=ids_file.read_text(),
    )

    assert result.exit_code == 0, result.output


# -- bad options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "between 1 and 4096"),
        (["--concurrency", "4,x"], "'x' is not a whole number"),
        (["--concurrency", ""], "at least one level"),
        (["--concurrency", "1,,4"], "empty level"),
        (["--requests", "0"], "--requests"),
        (["--fault-rate", "1.5"], "--fault-rate"),
        (["--latency", "-1"], "--latency"),
        (["--qps", "0"], "--qps"),
        (["--rate", "-2"], "--rate"),
        (["--server", "cloud"], "--server"),
        (["--base-url", "http://127.0.0.1:9"], "--base-url only apply to a real account"),
        (["--unique-id", "tenant"], "add --ids FILE"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = invoke(*args)

    assert result.exit_code == 2
    assert message in result.output


def test_fake_options_with_ids_are_refused(ids_file: Path) -> None:
    result = invoke("--ids", str(ids_file), "--latency", "0.2", "--qps", "3")

    assert result.exit_code == 2
    assert "--latency, --qps shape(s) the embedded fake server" in result.output


def test_ids_without_a_key(ids_file: Path) -> None:
    result = invoke("--ids", str(ids_file))

    assert result.exit_code == 2
    assert "MEMORIES_API_KEY" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [("# nothing\n\n", "no video numbers"), ("VI1\nVI 2\n", "line 2")],
)
def test_unusable_ids_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(content)

    result = invoke("--ids", str(path), env={"MEMORIES_API_KEY": SECRET})

    assert result.exit_code == 2
    assert message in result.output
    assert SECRET not in result.output


def test_missing_ids_file(tmp_path: Path) -> None:
    result = invoke("--ids", str(tmp_path / "absent.txt"))

    assert result.exit_code == 2
    assert "absent.txt" in result.output


# -- pure helpers -----------------------------------------------------------------------------


def test_parse_levels_sorts_and_drops_repeats() -> None:
    assert parse_levels(" 64, 1,4,4 ") == (1, 4, 64)


@pytest.mark.asyncio
async def test_a_level_takes_its_percentiles_from_the_batch(account: FakeServer) -> None:
    numbers = [v.video_no for v in account.library if not v.is_public]
    config = Config(api_key=SECRET, base_url=account.url)

    result = await measure_level(config, numbers, 4)

    assert (result.requests, result.succeeded, result.failed) == (len(numbers), len(numbers), 0)
    assert result.latency_p50 is not None
    assert result.latency_p95 is not None
    assert result.latency_p99 is not None
    assert 0 < result.latency_p50 <= result.latency_p95 <= result.latency_p99
    assert result.as_row()["latency_p99_ms"] == round(result.latency_p99 * 1000, 3)


@pytest.mark.asyncio
async def test_a_level_without_successes_has_no_percentiles(account: FakeServer) -> None:
    config = Config(api_key=SECRET, base_url=account.url)

    result = await measure_level(config, ["VI000000000000000001"], 1)

    assert (result.succeeded, result.failed) == (0, 1)
    assert (result.latency_p50, result.latency_p95, result.latency_p99) == (None, None, None)
    assert result.errors


def _level(concurrency: int, succeeded: int, elapsed: float, **extra: object) -> LevelResult:
    fields: dict[str, object] = {
        "concurrency": concurrency,
        "requests": 100,
        "succeeded": succeeded,
        "failed": 100 - succeeded,
        "elapsed": elapsed,
        "attempts": 100,
        "retries": 0,
        "rate_limited": 0,
        "latency_p50": 0.05,
        "latency_p95": 0.08,
        "latency_p99": 0.1,
    }
    fields.update(extra)
    return LevelResult(**fields)  # type: ignore[arg-type]


def test_suggestions_pick_the_knee_and_a_rate() -> None:
    results = [
        _level(1, 100, 5.0),
        _level(16, 100, 1.05),
        _level(64, 98, 1.0, attempts=140, rate_limited=40, errors={"RateLimitError 0429": 2}),
    ]

    advice = suggestions(results)

    assert "suggested --concurrency 16" in advice[0]
    assert "set --rate to about 88.2" in advice[1]  # 90 % of the 98/s achieved
    assert "2 transcript(s) failed" in advice[2]
    assert results[2].rate_limited_share == pytest.approx(40 / 140)
    assert results[0].as_row()["latency_p99_ms"] == 100.0


def test_no_suggestion_without_results() -> None:
    assert suggestions([]) == []
    assert _level(1, 0, 0.0).throughput == 0.0
