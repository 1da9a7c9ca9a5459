"""Running the fake: lifecycle, clean shutdown, latency, introspection, runners."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest
import pytest_asyncio

from memories_async.testing import (
    Endpoint,
    FakeLibrary,
    FakeServer,
    FakeServerOptions,
    FakeServerThread,
    FakeService,
    FakeVideo,
    FaultKind,
    FaultRule,
    Latency,
    TranscriptShape,
    build_fake_server,
    run_fake_server,
)
from memories_async.testing import _command as command_line
from memories_async.testing._command import main
from memories_async.testing._options import COMMAND_LINE_PORT
from memories_async.testing._render import BodyCache

PREFIX = "/serve/api/v1/"
VIDEO = "VI400000000000000001"
SLOW = "VI400000000000000002"


def library() -> FakeLibrary:
    return FakeLibrary([FakeVideo(VIDEO), FakeVideo(SLOW)])


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer(library()) as running:
        yield running


def session_for(server: FakeServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, headers={"Authorization": server.api_key})


async def fetch(session: aiohttp.ClientSession, video_no: str = VIDEO) -> int:
    async with session.get(
        PREFIX + "get_video_transcription", params={"video_no": video_no}
    ) as response:
        await response.read()
        return response.status


async def wait_for_in_flight(server: FakeServer, count: int) -> None:
    """Yield to the loop until ``count`` requests are being handled (no time limit assumed)."""
    for _ in range(2000):
        if server.stats.in_flight == count:
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"in_flight stayed at {server.stats.in_flight}, expected {count}")


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


@pytest.mark.asyncio
async def test_binds_loopback_on_a_free_port() -> None:
    server = FakeServer(library())
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url

    async with server:
        running = server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert repr(server).startswith(f"<FakeServer {server.url} videos=2")

    assert running
    assert not server.running
    assert repr(server).startswith("<FakeServer stopped")
    await server.aclose()


@pytest.mark.asyncio
async def test_a_server_runs_once() -> None:
    server = FakeServer(library())
    async with server:
        pass

    with pytest.raises(RuntimeError, match="runs once"):
        await server.start()


@pytest.mark.asyncio
async def test_stops_cleanly_while_a_request_hangs(server: FakeServer) -> None:
    server.faults = [FaultRule(FaultKind.HANG, video_nos={SLOW})]
    async with session_for(server) as session:
        assert await fetch(session) == 200
        hanging = asyncio.create_task(fetch(session, SLOW))
        await wait_for_in_flight(server, 1)

        await server.aclose()

        with pytest.raises(aiohttp.ClientError):
            await hanging
    assert server.stats.in_flight == 0
    assert server.stats.faults == {FaultKind.HANG: 1}
    assert not other_tasks()


@pytest.mark.asyncio
async def test_stops_cleanly_while_requests_wait_on_latency() -> None:
    server = FakeServer(library(), latency=Latency.fixed(3600))
    async with server, session_for(server) as session:
        waiting = [asyncio.create_task(fetch(session)) for _ in range(5)]
        await wait_for_in_flight(server, 5)
        assert server.stats.peak_in_flight == 5

        await server.aclose()

        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(result, aiohttp.ClientError) for result in results)
    assert server.stats.in_flight == 0
    assert not other_tasks()


@pytest.mark.asyncio
async def test_fixed_latency_delays_every_answer() -> None:
    server = FakeServer(library(), latency=Latency.fixed(0.05))
    async with server, session_for(server) as session:
        started = time.monotonic()
        assert await fetch(session) == 200
        elapsed = time.monotonic() - started

    assert elapsed >= 0.04


def test_latency_distributions_are_seeded() -> None:
    def draws(latency: Latency, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [latency.sample(rng) for _ in range(4000)]

    uniform = draws(Latency.uniform(0.1, 0.3), 1)
    lognormal = draws(Latency.lognormal(0.2, sigma=0.6), 1)

    assert uniform == draws(Latency.uniform(0.1, 0.3), 1)
    assert uniform != draws(Latency.uniform(0.1, 0.3), 2)
    assert min(uniform) >= 0.1
    assert max(uniform) <= 0.3
    assert statistics.fmean(lognormal) == pytest.approx(0.2, rel=0.1)
    assert max(lognormal) > 3 * statistics.median(lognormal)
    assert Latency.fixed(0.25).sample(random.Random()) == 0.25
    assert Latency.none().sample(random.Random()) == 0.0
    assert Latency.lognormal(0).sample(random.Random()) == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Latency.fixed(-1),
        lambda: Latency.uniform(0.5, 0.1),
        lambda: Latency.uniform(-0.1, 0.1),
        lambda: Latency.lognormal(0.1, sigma=-1),
    ],
)
def test_latency_rejects_bad_values(make: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        make()  # type: ignore[operator]


@pytest.mark.asyncio
async def test_random_draws_repeat_after_reset(server: FakeServer) -> None:
    server.faults = [FaultRule(FaultKind.HTTP_500, probability=0.5)]
    async with session_for(server) as session:
        before = [await fetch(session) for _ in range(20)]
        server.reset()
        after = [await fetch(session) for _ in range(20)]

    assert before == after
    assert set(before) == {200, 500}


@pytest.mark.asyncio
async def test_stats_count_requests_and_reset(server: FakeServer) -> None:
    async with session_for(server) as session:
        for video_no in (VIDEO, VIDEO, SLOW):
            await fetch(session, video_no)
        async with session.post(PREFIX + "list_videos", json={"page": 1, "size": 5}) as response:
            await response.read()
        async with session.get(PREFIX + "get_metadata", headers={"Authorization": "bad"}) as r:
            await r.read()

    stats = server.stats
    assert stats.requests == {
        Endpoint.VIDEO_TRANSCRIPTION: 3,
        Endpoint.LIST_VIDEOS: 1,
        Endpoint.GET_METADATA: 1,
    }
    assert stats.requests["get_video_transcription"] == 3
    assert stats.requests_by_video == {VIDEO: 2, SLOW: 1}
    assert stats.total_requests == 5
    assert stats.codes == {"0000": 4, "0401": 1}
    assert stats.peak_in_flight == 1
    assert stats.in_flight == 0

    server.reset()

    assert stats.total_requests == 0
    assert not stats.requests_by_video
    assert not stats.codes
    assert stats.peak_in_flight == 0
    assert repr(server).endswith("requests=0>")


def test_a_bare_service_has_an_application() -> None:
    service = FakeService(seed=3)

    routes = {resource.canonical for resource in service.app.router.resources()}

    assert routes == {endpoint.path for endpoint in Endpoint}
    assert len(service.library) == 105
    assert repr(service).startswith("<FakeService videos=105")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"hang_seconds": -1}, "hang_seconds"), ({"cache_bytes": -1}, "cache_bytes")],
)
def test_service_rejects_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeService(FakeLibrary(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_tiny_cache_still_serves_correct_bodies() -> None:
    lib = FakeLibrary.generate(30, seed=4)
    server = FakeServer(lib, cache_bytes=3000)
    ready = [v.video_no for v in lib.videos(status="PARSE")][:10]
    async with server, session_for(server) as session:
        first = [await fetch_body(session, no) for no in ready]
        second = [await fetch_body(session, no) for no in ready]

    assert first == second
    assert [orjson.loads(body)["data"]["videoNo"] for body in first] == ready


def test_body_cache_evicts_the_least_recently_used() -> None:
    cache = BodyCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    cache.put("a", b"AAAA")
    assert cache.get("a") == b"AAAA"

    cache.put("c", b"cccc")
    cache.put("huge", b"x" * 11)

    assert (cache.get("a"), cache.get("b"), cache.get("c"), cache.get("huge")) == (
        b"AAAA",
        None,
        b"cccc",
        None,
    )
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


async def fetch_body(session: aiohttp.ClientSession, video_no: str) -> bytes:
    async with session.get(
        PREFIX + "get_video_transcription", params={"video_no": video_no}
    ) as response:
        return await response.read()


def test_server_thread_serves_synchronous_callers() -> None:
    with FakeServerThread(FakeServer(library())) as server:
        request = urllib.request.Request(
            f"{server.url}{PREFIX}get_metadata?video_no={VIDEO}",
            headers={"Authorization": server.api_key},
        )
        with urllib.request.urlopen(request) as response:
            answer = json.loads(response.read())

    assert answer["data"]["video_no"] == VIDEO
    assert server.stats.requests == {Endpoint.GET_METADATA: 1}
    assert not server.running


def test_server_thread_reports_a_failed_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = FakeServerThread(FakeServer(library(), port=port))

        with pytest.raises(OSError, match=r"(?i)address already in use"):
            runner.start()
    runner.stop()
    assert repr(runner).startswith("<FakeServerThread <FakeServer stopped")


def test_server_thread_starts_once() -> None:
    runner = FakeServerThread(FakeServer(library()))
    with runner, pytest.raises(RuntimeError, match="already started"):
        runner.start()
    runner.stop()


def test_build_fake_server_maps_plain_options() -> None:
    server = build_fake_server(
        FakeServerOptions(
            videos=10,
            public_videos=2,
            seed=9,
            api_keys=["sk-test-bench"],
            qps=5,
            http_429=True,
            latency=0.1,
            latency_distribution="uniform",
            fault_rate=0.2,
            fault_kinds=["hang"],
            transcript_shape="documented",
            extra_fields=True,
        )
    )

    assert len(server.library) == 12
    assert server.api_key == "sk-test-bench"
    assert server.rate_limits.limit(Endpoint.LIST_VIDEOS) == 5
    assert server.rate_limits.http_429
    assert server.latency == Latency.uniform(0.0, 0.2)
    assert server.faults == (FaultRule(FaultKind.HANG, probability=0.2),)
    assert server.wire_format.transcript_shape is TranscriptShape.DOCUMENTED
    assert server.wire_format.extra_fields


def test_build_fake_server_defaults_are_plain() -> None:
    server = build_fake_server(FakeServerOptions(videos=3, public_videos=0))

    assert server.latency == Latency.none()
    assert server.faults == ()
    assert server.rate_limits.limit(Endpoint.VIDEO_TRANSCRIPTION) is None
    lognormal = FakeServerOptions(videos=1, latency=0.2, latency_distribution="lognormal")
    assert build_fake_server(lognormal).latency == Latency.lognormal(0.2)
    assert len(build_fake_server().library) == 1010


@pytest.mark.parametrize(
    ("options", "latency"),
    [
        (FakeServerOptions(latency=0.3), Latency.fixed(0.3)),
        (FakeServerOptions(latency=0.0, latency_distribution="uniform"), Latency.none()),
    ],
)
def test_options_give_the_latency(options: FakeServerOptions, latency: Latency) -> None:
    assert options.delay() == latency


def test_options_reject_unknown_latency_shapes() -> None:
    with pytest.raises(ValueError, match="latency_distribution"):
        FakeServerOptions(videos=1, latency_distribution="pareto")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", 70000, "'port' must be between 0 and 65535, got 70000"),
        ("qps", 0.0, "'qps' must be > 0, got 0.0"),
        ("burst", 0.5, "'burst' must be >= 1, got 0.5"),
        ("fault_rate", 1.5, "a probability, between 0 and 1"),
        ("fault_kinds", "hang,meteor", "'meteor' is not a valid FaultKind"),
    ],
)
def test_options_reject_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FakeServerOptions(**{field: value})  # type: ignore[arg-type]


def test_options_read_comma_lists_and_give_their_command_line() -> None:
    options = FakeServerOptions(
        videos=3,
        unique_ids=" a, b,",
        fault_kinds="hang, http_500",
        api_keys=["sk-a", "sk-b"],
        strict=True,
        qps=2.5,
        transcript_shape="documented",
    )

    assert options.unique_ids == ("a", "b")
    assert options.fault_kinds == (FaultKind.HANG, FaultKind.HTTP_500)
    argv = options.to_argv()
    assert argv == [
        *("--port", "0"),
        *("--videos", "3", "--unique-ids", "a,b", "--api-key", "sk-a", "--api-key", "sk-b"),
        *("--qps", "2.5", "--strict", "--fault-kinds", "hang,http_500"),
        *("--transcript-shape", "documented"),
    ]
    assert command_line.options_from(command_line.command_line().parse_args(argv)) == options
    # The command line's port is fixed by default; the Python one is a free port.
    assert FakeServerOptions().to_argv() == ["--port", "0"]
    assert FakeServerOptions(port=COMMAND_LINE_PORT).to_argv() == []
    with pytest.raises(ValueError, match="'record_timeline' has no command-line option"):
        FakeServerOptions(record_timeline=True).to_argv()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "x"], "argument --port: 'x' is not a whole number"),
        (["--qps", "fast"], "argument --qps: 'fast' is not a number"),
        (["--burst", "0.5"], "argument --burst: must be >= 1, got 0.5"),
    ],
)
def test_command_line_names_the_option_of_a_bad_value(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_command_line_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["--port", str(port), "--videos", "1"])

    assert status == 1
    assert capsys.readouterr().err.startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_command_line_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--videos", "5", "--fault-rate", "2"])

    assert exited.value.code == 2
    assert "probability" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_command_line_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "memories_async.testing",
        "--videos",
        "7",
        "--public-videos",
        "0",
        "--qps",
        "1000",
        "--api-key",
        "sk-test-cli",
        "--fault-kinds",
        "http_500",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        async with (
            aiohttp.ClientSession(url, headers={"Authorization": "sk-test-cli"}) as session,
            session.post(PREFIX + "list_videos", json={"page": 1, "size": 200}) as response,
        ):
            answer = await response.json()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert url.startswith("http://127.0.0.1:")
    assert answer["data"]["total_count"] == "7"
    assert process.returncode == 0
    assert b"api key: sk-test-cli" in stderr
    assert b"Traceback" not in stderr


def visit_then_interrupt(
    server: FakeServer, answers: list[object], threads: list[threading.Thread]
) -> None:
    """From another thread, call the running server once, then interrupt this process."""

    def visit() -> None:
        try:
            request = urllib.request.Request(
                f"{server.url}{PREFIX}list_unique_ids", headers={"Authorization": server.api_key}
            )
            with urllib.request.urlopen(request) as response:
                answers.append(json.loads(response.read()))
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=visit)
    threads.append(thread)
    thread.start()


def test_run_fake_server_returns_when_interrupted() -> None:
    answers: list[object] = []
    threads: list[threading.Thread] = []

    run_fake_server(
        FakeServerOptions(videos=3, unique_ids=["a", "b"]),
        on_ready=lambda server: visit_then_interrupt(server, answers, threads),
    )

    for thread in threads:
        thread.join()
    assert answers == [
        {
            "code": "0000",
            "msg": "success",
            "data": {"unique_ids": ["a", "b", "default"]},
            "success": True,
            "failed": False,
        }
    ]


def test_command_line_prints_the_url_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[object] = []
    threads: list[threading.Thread] = []
    seen: list[FakeServerOptions] = []

    def run(options: FakeServerOptions, /, *, on_ready: Callable[[FakeServer], object]) -> None:
        seen.append(options)

        def ready(server: FakeServer) -> None:
            on_ready(server)
            visit_then_interrupt(server, answers, threads)

        run_fake_server(options, on_ready=ready)

    monkeypatch.setattr(command_line, "run_fake_server", run)

    status = main(
        [
            *("--port", "0", "--videos", "4", "--unique-ids", "x,y"),
            *("--fault-kinds", "hang, http_500", "--seed", "2"),
        ]
    )

    for thread in threads:
        thread.join()
    out, err = capsys.readouterr()
    assert status == 0
    assert out.startswith("http://127.0.0.1:")
    assert "api key: sk-test-fake-key" in err
    assert seen == [
        FakeServerOptions(videos=4, unique_ids=("x", "y"), fault_kinds="hang,http_500", seed=2)
    ]
    assert len(answers) == 1
