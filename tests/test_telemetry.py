"""OpenTelemetry traces and metrics (the ``otel`` extra), aiohttp trace configs and
MEMORIES_LOG, against the fake server. The command line under opentelemetry-instrument
is run by the example of docs/how-to/observe.md."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aioresponses import aioresponses
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from memories_async import (
    AuthenticationError,
    ConfigError,
    HTTPStatusError,
    MemoriesClient,
    ProcessingFailedError,
    RetryPolicy,
    VideoStatus,
    export_transcripts,
)
from memories_async.sync import SyncMemoriesClient
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerThread,
    FakeVideo,
    FaultKind,
)

from .conftest import API_KEY, BASE_URL, envelope

VIDEO = "VI500000000000000001"
OTHER = "VI500000000000000002"
THIRD = "VI500000000000000003"
BROKEN = "VI500000000000000009"


class Telemetry:
    """An SDK tracer provider and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def points(self) -> dict[str, list[Any]]:
        """The data points of every metric, by name."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def dump(self) -> str:
        """Every span (attributes, events, links, resource) and data point, as text."""
        spans = [span.to_json() for span in self.finished()]
        data = self.reader.get_metrics_data()
        assert data is not None
        return "\n".join([*spans, data.to_json()])

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def total(points: list[Any], **attributes: Any) -> float:
    """The sum of the points (counters) or of their counts (histograms) with ``attributes``."""
    value = 0.0
    for point in points:
        if all(point.attributes.get(k) == v for k, v in attributes.items()):
            value += point.count if hasattr(point, "count") else point.value
    return value


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.shutdown()


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeServer]:
    segments = [FakeSegment(0, 5, "a kitchen")]
    library = FakeLibrary(
        [
            FakeVideo(VIDEO, visual=segments, audio=[FakeSegment(0, 2, " hello")]),
            FakeVideo(OTHER, visual=segments),
            FakeVideo(THIRD, visual=segments),
            FakeVideo(BROKEN, visual=segments),
        ]
    )
    async with FakeServer(library) as running:
        yield running


def client_of(server: FakeServer, otel: Telemetry, **kwargs: Any) -> MemoriesClient:
    kwargs.setdefault("retry", RetryPolicy(backoff=False))
    return MemoriesClient(
        api_key=server.api_key,
        base_url=server.url,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        **kwargs,
    )


@pytest.mark.asyncio
async def test_the_span_tree_of_a_fetch_with_a_retry_and_a_rate_limit_answer(
    server: FakeServer, otel: Telemetry
) -> None:
    # The last rule is tried first, and each counts the requests it answered:
    # a 503, then a 0429, then the answer.
    server.fail(VIDEO, FaultKind.RATE_LIMITED, times=1)
    server.fail(VIDEO, FaultKind.HTTP_503, times=1)

    # Two requests a second: the retries wait for the governor's next slots.
    async with client_of(server, otel, rate=2.0) as client:
        transcript = await client.get_transcription(VIDEO, kind="audio")

    assert transcript.segments
    (operation,) = otel.named("memories.get_transcription")
    attempts = sorted(otel.named("GET"), key=lambda span: span.start_time or 0)
    assert len(attempts) == 3
    assert operation.parent is None
    assert operation.attributes is not None
    assert operation.attributes["memories.video_no"] == VIDEO
    assert operation.attributes["memories.kind"] == "audio"
    assert operation.attributes["memories.endpoint"] == "get_audio_transcription"
    assert operation.attributes["memories.attempts"] == 3
    assert operation.attributes["memories.code"] == "0000"
    waits = [span.attributes.get("memories.quota_wait", 0) for span in attempts]  # type: ignore[union-attr]
    assert waits[0] == 0  # the first slot was free
    assert waits[1] > 0
    assert waits[2] > 0
    assert operation.attributes["memories.quota_wait"] == pytest.approx(sum(waits))
    assert [event.name for event in operation.events] == [
        "memories.retry",
        "memories.rate_limited",
    ]
    retry, refused = operation.events
    assert retry.attributes is not None
    assert refused.attributes is not None
    assert retry.attributes["error.type"] == "HTTPStatusError"
    assert retry.attributes["memories.attempt"] == 1
    assert "memories.wait" in retry.attributes
    assert refused.attributes["memories.code"] == "0429"
    assert refused.attributes["memories.attempt"] == 2
    for number, span in enumerate(attempts):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == operation.context.span_id
        attributes = span.attributes
        assert attributes is not None
        assert attributes["http.request.method"] == "GET"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == server.port
        full = str(attributes["url.full"])
        assert full.startswith(f"{server.url}/serve/api/v1/get_audio_transcription?")
        assert f"video_no={VIDEO}" in full
        assert attributes.get("http.request.resend_count") == (number or None)
    first, second, third = (span.attributes or {} for span in attempts)
    assert first["http.response.status_code"] == 503
    assert first["error.type"] == "HTTPStatusError"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert second["memories.code"] == "0429"
    assert second["error.type"] == "RateLimitError"
    assert third["http.response.status_code"] == 200
    assert third["memories.code"] == "0000"
    assert "error.type" not in third
    assert attempts[2].status.status_code is StatusCode.UNSET


@pytest.mark.asyncio
async def test_a_failed_fetch_records_its_error_on_the_operation_span(
    server: FakeServer, otel: Telemetry
) -> None:
    server.fail(VIDEO, FaultKind.HTTP_502)

    async with client_of(server, otel, retry=RetryPolicy(attempts=2, backoff=False)) as client:
        with pytest.raises(HTTPStatusError):
            await client.get_transcription(VIDEO, kind="audio")

    (operation,) = otel.named("memories.get_transcription")
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes is not None
    assert operation.attributes["error.type"] == "HTTPStatusError"
    assert operation.attributes["memories.attempts"] == 2
    assert [event.name for event in operation.events] == ["memories.retry", "exception"]
    points = otel.points()
    assert total(points["memories.transcripts.failed"], **{"error.type": "HTTPStatusError"}) == 1
    assert "memories.transcripts.fetched" not in points


@pytest.mark.asyncio
async def test_metrics_after_a_small_batch(server: FakeServer, otel: Telemetry) -> None:
    server.fail(BROKEN, FaultKind.HTTP_500)
    server.fail(OTHER, FaultKind.RATE_LIMITED, times=1)
    server.fail(THIRD, FaultKind.CONNECTION_RESET, times=1)

    retry = RetryPolicy(attempts=2, backoff=False)
    async with client_of(server, otel, retry=retry, rate=1000.0) as client:
        outcomes = await client.gather_transcriptions(
            [VIDEO, OTHER, THIRD, BROKEN, (VIDEO, "audio")], max_concurrency=2
        )
        points = otel.points()

    assert len(outcomes.failed) == 1
    assert total(points["memories.transcripts.fetched"], **{"memories.kind": "visual"}) == 3
    assert total(points["memories.transcripts.fetched"], **{"memories.kind": "audio"}) == 1
    failed = points["memories.transcripts.failed"]
    assert total(failed, **{"memories.kind": "visual", "error.type": "HTTPStatusError"}) == 1
    assert total(points["memories.requests.refused"]) == 1
    # Five jobs: one 0429 retried, one reset retried, two attempts of the broken video.
    duration = points["http.client.request.duration"]
    assert total(duration) == 8
    assert total(duration, **{"http.response.status_code": 500}) == 2
    assert total(duration, **{"http.response.status_code": 200}) == 5  # the 0429 included
    (reset,) = [p for p in duration if p.attributes.get("error.type") == "TransportError"]
    assert "http.response.status_code" not in reset.attributes
    assert all(point.attributes["server.address"] == "127.0.0.1" for point in duration)
    assert total(points["memories.quota.wait"]) == 8
    assert total(points["memories.batch.jobs_in_flight"]) == 0  # up and down again
    assert {p.attributes["memories.kind"] for p in points["memories.batch.jobs_in_flight"]} == {
        "visual",
        "audio",
    }
    (rate,) = points["memories.rate"]  # not adaptive (backoff=False): the rate given
    assert rate.value == 1000
    assert rate.attributes == {"memories.rate.shared": False}
    assert "memories.rate" not in otel.points()  # a closed client's governor is not read


@pytest.mark.asyncio
async def test_the_jobs_of_a_batch_are_traces_of_their_own_linked_to_the_batch(
    server: FakeServer, otel: Telemetry
) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    async with client_of(server, otel) as client:
        with tracer.start_as_current_span("request"):
            outcomes = await client.gather_transcriptions([VIDEO, OTHER, THIRD, "", VIDEO])

    assert len(outcomes) == 4
    (request,) = otel.named("request")
    (batch,) = otel.named("memories.batch")
    jobs = otel.named("memories.get_transcription")
    assert batch.parent is not None
    assert batch.parent.span_id == request.context.span_id
    assert batch.attributes is not None
    assert batch.attributes["memories.batch.queued"] == 4
    assert batch.attributes["memories.batch.succeeded"] == 3
    assert batch.attributes["memories.batch.failed"] == 1  # the blank number
    assert batch.attributes["memories.batch.duplicates"] == 1
    assert batch.attributes["memories.kind"] == ("visual",)
    assert len(jobs) == 3
    for job in jobs:
        assert job.parent is None
        assert job.context.trace_id != batch.context.trace_id
        (link,) = job.links
        assert link.context.span_id == batch.context.span_id
    # The attempt spans are children of their job's span, in its trace.
    by_trace = {job.context.trace_id: job for job in jobs}
    for attempt in otel.named("GET"):
        assert attempt.parent is not None
        assert attempt.parent.span_id == by_trace[attempt.context.trace_id].context.span_id


@pytest.mark.asyncio
async def test_a_single_fetch_is_a_child_of_the_current_span(
    server: FakeServer, otel: Telemetry
) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    async with client_of(server, otel) as client:
        with tracer.start_as_current_span("request"):
            await client.get_metadata(VIDEO)
            videos = [video async for video in client.list_videos(page_size=3)]
            await client.list_unique_ids()

    assert len(videos) == 4
    (request,) = otel.named("request")
    (metadata,) = otel.named("memories.get_metadata")
    pages = otel.named("memories.list_videos")
    (namespaces,) = otel.named("memories.list_unique_ids")
    assert len(pages) == 2  # one span per page
    for span in (metadata, *pages, namespaces):
        assert span.parent is not None
        assert span.parent.span_id == request.context.span_id
    assert metadata.attributes is not None
    assert metadata.attributes["memories.video_no"] == VIDEO
    assert "memories.kind" not in metadata.attributes
    assert len(otel.named("POST")) == 2
    assert otel.named("POST")[0].attributes["url.full"] == (  # type: ignore[index]
        f"{server.url}/serve/api/v1/list_videos"
    )


@pytest.mark.asyncio
async def test_views_emit_the_telemetry_of_their_client(
    server: FakeServer, otel: Telemetry
) -> None:
    async with client_of(server, otel) as client:
        view = client.with_options(timeout=30)
        await view.get_transcription(VIDEO)

    assert len(otel.named("memories.get_transcription")) == 1
    assert len(otel.named("GET")) == 1

    async with client_of(server, otel) as client:  # the provider's instruments, again
        await client.get_transcription(VIDEO)

    assert total(otel.points()["memories.transcripts.fetched"]) == 2


def test_the_blocking_client_emits_telemetry(otel: Telemetry) -> None:
    fake = FakeServer(FakeLibrary([FakeVideo(VIDEO, visual=[FakeSegment(0, 5, "a kitchen")])]))
    with (
        FakeServerThread(fake) as server,
        SyncMemoriesClient(
            api_key=server.api_key,
            base_url=server.url,
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
        ) as client,
    ):
        client.get_transcription(VIDEO)
        client.with_options(timeout=30).get_metadata(VIDEO)

    assert len(otel.named("memories.get_transcription")) == 1
    assert len(otel.named("memories.get_metadata")) == 1


@pytest.mark.asyncio
async def test_the_key_and_the_redis_password_are_nowhere_in_a_full_export(
    server: FakeServer,
    otel: Telemetry,
    redis_password_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="memories_async")
    password = redis_password_url.split(":")[2].split("@", maxsplit=1)[0]
    assert len(password) >= 8
    server.fail(OTHER, FaultKind.RATE_LIMITED, times=1)
    server.fail(THIRD, FaultKind.HTTP_503, times=1)
    server.fail(BROKEN, FaultKind.HTTP_401)  # an account-wide error: the export halts
    ids = [VIDEO, OTHER, THIRD]

    async with client_of(server, otel, rate=1000.0, rate_store=redis_password_url) as client:
        stats = await export_transcripts(client, ids, tmp_path / "out.jsonl", kind="both")
        with pytest.raises(AuthenticationError):
            await client.get_transcription(BROKEN)
        dump = otel.dump()  # the rate gauge reads the governors of open clients

    assert stats.exported == 6
    (export,) = otel.named("memories.export")
    assert export.attributes is not None
    assert export.attributes["memories.export.exported"] == 6
    assert export.attributes["memories.export.format"] == "jsonl"
    (batch,) = otel.named("memories.batch")
    assert batch.parent is not None
    assert batch.parent.span_id == export.context.span_id
    assert "memories.rate_limited" in dump
    assert "memories.requests.refused" in dump
    assert '"memories.rate.shared": true' in dump
    assert '"memories.code": "0401"' in dump
    assert "AuthenticationError" in dump
    assert server.api_key not in dump
    assert password not in dump
    assert "GET get_audio_transcription" in caplog.text
    assert server.api_key not in caplog.text
    assert password not in caplog.text


@pytest.mark.asyncio
async def test_no_provider_configured_means_no_telemetry(server: FakeServer) -> None:
    # The global providers of this process are the API's defaults: nobody set them.
    async with MemoriesClient(api_key=server.api_key, base_url=server.url) as client:
        await client.get_transcription(VIDEO)
        assert client._observer() is None


NO_TELEMETRY = """
import asyncio, sys
BLOCK
from memories_async import MemoriesClient
from memories_async.testing import FakeLibrary, FakeServer, FakeVideo

async def main():
    library = FakeLibrary([FakeVideo("VI500000000000000001")])
    async with FakeServer(library) as server:
        async with MemoriesClient(api_key=server.api_key, base_url=server.url) as client:
            await client.get_transcription("VI500000000000000001")
            async with client.fetch_transcriptions(["VI500000000000000001"]) as batch:
                outcomes = [outcome async for outcome in batch]
            assert outcomes[0].ok
            assert client._observer() is None
    print(sys.modules.get("opentelemetry", "never imported"))

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("block", "shown"),
    [
        # The extra is not installed.
        ('sys.modules["opentelemetry"] = None', "None"),
        # The API is installed, nothing imported it: no provider can have been set, and
        # the client does not import it either.
        ("", "never imported"),
    ],
)
def test_without_the_extra_or_any_provider_the_client_works_and_emits_nothing(
    block: str, shown: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_TELEMETRY.replace("BLOCK", block)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_environment(),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shown


@pytest.mark.asyncio
async def test_trace_configs_go_to_the_session_the_client_makes(server: FakeServer) -> None:
    seen: list[str] = []

    async def on_request_start(
        _session: aiohttp.ClientSession, _context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        seen.append(params.url.path)

    trace_config = aiohttp.TraceConfig()
    trace_config.on_request_start.append(on_request_start)
    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, trace_configs=[trace_config]
    ) as client:
        await client.get_transcription(VIDEO)
        await client.with_options(timeout=30).get_metadata(VIDEO)

    assert seen == ["/serve/api/v1/get_video_transcription", "/serve/api/v1/get_metadata"]


@pytest.mark.asyncio
async def test_trace_configs_and_a_session_of_ones_own_are_refused_together() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match=r"ClientSession\(trace_configs=") as refused:
            MemoriesClient(api_key="k" * 20, session=session, trace_configs=[])

    assert "\n" not in str(refused.value)


@pytest.mark.asyncio
async def test_the_aiohttp_instrumentation_works_with_the_sdk(
    server: FakeServer, otel: Telemetry
) -> None:
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    trace_config = create_trace_config(tracer_provider=otel.tracer_provider)
    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, trace_configs=[trace_config]
    ) as client:
        await client.get_transcription(VIDEO)

    (span,) = otel.finished()  # the instrumentation's span only: the client's own are off
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert server.api_key not in json.dumps(dict(span.attributes))

    otel.spans.clear()
    async with client_of(server, otel, trace_configs=[trace_config]) as client:
        await client.get_transcription(VIDEO)

    # The client's attempt span is the HTTP client span: the instrumentation stands aside.
    assert [span.name for span in otel.finished()] == ["GET", "memories.get_transcription"]
    assert otel.finished()[0].instrumentation_scope.name == "memories_async"


LOGGING = """
import asyncio, logging
from memories_async import MemoriesClient
from memories_async.testing import FakeLibrary, FakeServer, FakeVideo

async def main():
    async with FakeServer(FakeLibrary([FakeVideo("VI500000000000000001")])) as server:
        async with MemoriesClient(api_key=server.api_key, base_url=server.url) as client:
            await client.get_transcription("VI500000000000000001")
            print(server.api_key)

asyncio.run(main())
"""


@pytest.mark.parametrize(("value", "shown"), [("debug", True), ("INFO", False), ("", False)])
def test_memories_log_turns_the_logger_on_on_stderr(value: str, shown: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOGGING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_environment(), "MEMORIES_LOG": value},
    )

    assert done.returncode == 0, done.stderr
    assert ("DEBUG memories_async: GET get_video_transcription" in done.stderr) is shown
    assert done.stdout.strip() not in done.stderr


def test_a_bad_memories_log_is_a_one_line_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOGGING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_environment(), "MEMORIES_LOG": "verbose"},
    )

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "ConfigError: MEMORIES_LOG must be 'info' or 'debug'"
        " (or empty for no logging), got 'verbose'"
    )


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIES_", "OTEL_"))}


@pytest.mark.asyncio
async def test_the_fallback_to_the_newer_endpoint_is_no_failed_fetch(
    mock_api: aioresponses, otel: Telemetry
) -> None:
    found = re.compile(r"^http://api\.test/serve/api/v1/get_video_transcription\b.*")
    mock_api.get(found, status=404, body="not found")
    caption = re.compile(r"^http://api\.test/serve/api/v1/get_video_caption\b.*")
    mock_api.get(caption, payload=envelope({"videoNo": VIDEO, "transcriptions": []}))

    async with MemoriesClient(
        api_key=API_KEY,
        base_url=BASE_URL,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as client:
        await client.get_transcription(VIDEO)

    calls = otel.named("memories.get_transcription")
    assert [span.attributes["memories.endpoint"] for span in calls] == [  # type: ignore[index]
        "get_video_transcription",
        "get_video_caption",
    ]
    points = otel.points()
    assert total(points["memories.transcripts.fetched"]) == 1
    assert "memories.transcripts.failed" not in points
    assert server_key_absent(otel)


def server_key_absent(otel: Telemetry) -> bool:
    return API_KEY not in otel.dump()


@pytest.mark.asyncio
async def test_traces_without_metrics_and_metrics_without_traces(
    server: FakeServer, otel: Telemetry
) -> None:
    server.fail(VIDEO, FaultKind.RATE_LIMITED, times=1)
    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, tracer_provider=otel.tracer_provider
    ) as client:
        async with client.fetch_transcriptions([VIDEO]) as batch:
            assert [outcome.ok async for outcome in batch] == [True]
        server.fail(OTHER, FaultKind.HTTP_502)
        with pytest.raises(HTTPStatusError):
            await client.with_options(retry=RetryPolicy(attempts=1)).get_transcription(OTHER)

    assert [span.name for span in otel.finished()].count("memories.get_transcription") == 2
    assert otel.reader.get_metrics_data() is None or not otel.points()

    otel.spans.clear()
    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, meter_provider=otel.meter_provider
    ) as client:
        await client.gather_transcriptions([THIRD])

    assert otel.finished() == []
    assert total(otel.points()["memories.transcripts.fetched"]) == 1


@pytest.fixture
def quiet_logger(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """The package's logger as a process without logging setup has it, MEMORIES_LOG unread."""
    from memories_async import _logenv

    logger = logging.getLogger("memories_async")
    monkeypatch.setattr(_logenv, "_done", False)
    monkeypatch.setattr(logger, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    return logger


def test_memories_log_adds_a_stderr_handler_once(
    quiet_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memories_async._logenv import configure_logging_from_env

    monkeypatch.setenv("MEMORIES_LOG", " Info ")
    configure_logging_from_env()
    configure_logging_from_env()

    handlers = [h for h in quiet_logger.handlers if not isinstance(h, logging.NullHandler)]
    assert len(handlers) == 1
    assert isinstance(handlers[0], logging.StreamHandler)
    assert handlers[0].stream is sys.stderr
    assert quiet_logger.level == logging.INFO


def test_memories_log_leaves_a_configured_logger_alone(
    quiet_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memories_async._logenv import configure_logging_from_env

    mine = logging.StreamHandler()
    quiet_logger.handlers.append(mine)
    monkeypatch.setenv("MEMORIES_LOG", "debug")
    configure_logging_from_env()

    assert quiet_logger.handlers[1:] == [mine]
    assert quiet_logger.level == logging.NOTSET


def test_a_bad_memories_log_is_refused_each_time_a_client_is_made(
    quiet_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORIES_LOG", "loud")
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"^MEMORIES_LOG must be 'info' or 'debug'"):
            MemoriesClient(api_key="k" * 20)

    monkeypatch.setenv("MEMORIES_LOG", "")
    MemoriesClient(api_key="k" * 20)
    assert quiet_logger.handlers == [quiet_logger.handlers[0]]


@pytest.mark.asyncio
async def test_a_rate_limit_answer_with_retry_after_says_so_in_its_event(
    mock_api: aioresponses, otel: Telemetry
) -> None:
    audio = re.compile(r"^http://api\.test/serve/api/v1/get_audio_transcription\b.*")
    mock_api.get(audio, status=429, headers={"Retry-After": "0"}, body="slow down")
    mock_api.get(audio, payload=envelope({"videoNo": VIDEO, "transcriptions": []}))

    async with MemoriesClient(
        api_key=API_KEY, base_url=BASE_URL, tracer_provider=otel.tracer_provider
    ) as client:
        await client.get_transcription(VIDEO, kind="audio")

    (operation,) = otel.named("memories.get_transcription")
    (event,) = operation.events
    assert event.name == "memories.rate_limited"
    assert event.attributes == {
        "memories.attempt": 1,
        "error.type": "HTTPStatusError",
        "memories.retry_after": 0.0,
    }
    first, second = sorted(otel.named("GET"), key=lambda span: span.start_time or 0)
    assert first.attributes is not None
    assert first.attributes["http.response.status_code"] == 429
    assert second.attributes is not None
    assert second.attributes["http.request.resend_count"] == 1


@pytest.mark.asyncio
async def test_a_wait_is_a_span_with_its_polls_under_it(
    server: FakeServer, otel: Telemetry
) -> None:
    server.processing(OTHER, ready_after=0.05)
    server.processing(THIRD, ready_after=0, then="FAILED")
    async with client_of(server, otel) as client:
        video = await client.wait_until_ready(OTHER, poll=0.01, timeout=30)
        with pytest.raises(ProcessingFailedError):
            await client.wait_until_ready(THIRD, poll=0.01)

    assert video.status is VideoStatus.PARSE
    ready, failed = otel.named("memories.wait_until_ready")
    assert ready.attributes is not None
    assert dict(ready.attributes) == {
        "memories.video_no": OTHER,
        "memories.wait.poll": 0.01,
        "memories.wait.timeout": 30,
        "memories.status": "PARSE",
    }
    assert ready.status.status_code is StatusCode.UNSET
    polls = [
        span
        for span in otel.named("memories.get_metadata")
        if span.parent is not None and span.parent.span_id == ready.context.span_id
    ]
    assert len(polls) >= 2  # UNPARSE at least once, then PARSE
    assert failed.attributes is not None
    assert failed.attributes["memories.status"] == "FAILED"
    assert failed.attributes["error.type"] == "ProcessingFailedError"
    assert "memories.wait.timeout" not in failed.attributes
    assert failed.status.status_code is StatusCode.ERROR
    (exception,) = failed.events
    assert exception.name == "exception"
