"""OpenTelemetry traces and metrics of the client (the ``otel`` extra): off unless configured.

Whether a client emits telemetry is decided once, when it opens its session (or
starts its first batch or export): it does when ``opentelemetry`` can be imported
and a tracer provider or a meter provider is configured, given to the client
(``MemoriesClient(tracer_provider=, meter_provider=)``) or set globally by the
application (``opentelemetry-instrument``, ``trace.set_tracer_provider``). The
API's default providers (proxies that nobody configured, or the no-op ones) mean
off: :func:`resolve` returns ``None`` and the client keeps its plain code path,
whose attempt function has no telemetry in it at all. Only when it is on does a
call go through :meth:`Telemetry.call`, a twin of that attempt function (keep the
two in step) with spans and instruments around each step.

The names, stable and documented in the reference (``docs/reference/telemetry.md``):

* one span per operation, ``memories.get_transcription`` / ``memories.list_videos``
  (one per page) / ``memories.get_metadata`` / ``memories.list_unique_ids``, with one
  ``CLIENT`` child span per HTTP attempt named by its method (``GET``, ``POST``) and
  the HTTP client semantic conventions' attributes;
* ``memories.wait_until_ready`` for a wait, its polls (``memories.get_metadata``) under it;
* ``memories.batch`` for a batch and ``memories.export`` for an export run. A batch's
  jobs are not its children: each job's operation span starts a trace of its own,
  linked to the batch span, so that a batch of a million videos makes a million small
  traces rather than one that no exporter or backend can hold;
* SDK attributes under ``memories.``; the key is a header and never an attribute, and
  ``url.full`` is the URL without user info.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _protocol as protocol
from ._errors import MemoriesError
from ._models import VideoStatus
from ._retry import OnRetry
from ._transport import answer_data, log_attempt

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Link, Span, TracerProvider

    from ._batch import TranscriptBatch
    from ._client import MemoriesClient
    from ._export import ExportStats
    from ._governor import RateGovernor
    from ._transport import Transport

T = TypeVar("T")

SCOPE: Final = "memories_async"
"""The instrumentation scope of every tracer and meter the SDK takes."""

OPERATIONS: Final[Mapping[str, str]] = {
    protocol.VIDEO_TRANSCRIPTION: "memories.get_transcription",
    protocol.VIDEO_CAPTION: "memories.get_transcription",
    protocol.AUDIO_TRANSCRIPTION: "memories.get_transcription",
    protocol.PUBLIC_VIDEO_TRANSCRIPTION: "memories.get_transcription",
    protocol.PUBLIC_AUDIO_TRANSCRIPTION: "memories.get_transcription",
    protocol.LIST_VIDEOS: "memories.list_videos",
    protocol.GET_METADATA: "memories.get_metadata",
    protocol.LIST_UNIQUE_IDS: "memories.list_unique_ids",
}
"""The span name of each endpoint's operation."""

KINDS: Final[Mapping[str, str]] = {
    protocol.VIDEO_TRANSCRIPTION: "visual",
    protocol.VIDEO_CAPTION: "visual",
    protocol.PUBLIC_VIDEO_TRANSCRIPTION: "visual",
    protocol.AUDIO_TRANSCRIPTION: "audio",
    protocol.PUBLIC_AUDIO_TRANSCRIPTION: "audio",
}
"""The transcript kind each transcription endpoint serves."""

BATCH_SPAN: Final = "memories.batch"
EXPORT_SPAN: Final = "memories.export"
WAIT_SPAN: Final = "memories.wait_until_ready"

_JOB_LINKS: contextvars.ContextVar[tuple[Link, ...] | None] = contextvars.ContextVar(
    "memories_async_job_links", default=None
)
"""In a batch job's task: the link to its batch span, which makes the job's operation
span the root of a trace of its own."""


def resolve(
    tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
) -> Telemetry | None:
    """The telemetry of a client, or ``None`` when there is nothing to emit to (the
    extra absent, or no provider given and none configured)."""
    if tracer_provider is None and meter_provider is None and not _may_be_configured():
        return None
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return None
    if tracer_provider is None:
        tracer_provider = trace.get_tracer_provider()
    if meter_provider is None:
        meter_provider = metrics.get_meter_provider()
    tracing = not _is_default_tracer_provider(tracer_provider)
    measuring = not _is_default_meter_provider(meter_provider)
    if not tracing and not measuring:
        return None
    return Telemetry(
        tracer_provider if tracing else trace.NoOpTracerProvider(),
        _instruments(meter_provider) if measuring else None,
    )


def _may_be_configured() -> bool:
    """Whether a global provider may have been set: not while neither API module has been
    imported (setting one imports it) and no environment variable names a provider for
    the API to load. Then the client needs not import OpenTelemetry at all."""
    return (
        "opentelemetry.trace" in sys.modules
        or "opentelemetry.metrics" in sys.modules
        or "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
        or "OTEL_PYTHON_METER_PROVIDER" in os.environ
    )


def _is_default_tracer_provider(provider: object) -> bool:
    from opentelemetry import trace

    return isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _is_default_meter_provider(provider: object) -> bool:
    from opentelemetry import metrics

    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError:  # pragma: no cover - a future API that moves it
        return isinstance(provider, metrics.NoOpMeterProvider)
    return isinstance(provider, metrics.NoOpMeterProvider | _ProxyMeterProvider)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("memories-async")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


class _Instruments:
    """The SDK's instruments on one meter provider, made once per provider (a meter
    keeps the first callbacks of an observable instrument, so the rate gauge reads
    every live governor of the provider's clients)."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(SCOPE, _version())
        self.governors: weakref.WeakSet[RateGovernor] = weakref.WeakSet()
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=[
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
            ],
        )  # fmt: skip
        self.refused = meter.create_counter(
            "memories.requests.refused",
            unit="{request}",
            description="Requests the service refused with a rate-limit answer (0429, HTTP 429).",
        )
        self.quota_wait = meter.create_histogram(
            "memories.quota.wait",
            unit="s",
            description="Time an attempt waited for a slot of the rate governor.",
        )
        self.fetched = meter.create_counter(
            "memories.transcripts.fetched",
            unit="{transcript}",
            description="Transcripts fetched.",
        )
        self.failed = meter.create_counter(
            "memories.transcripts.failed",
            unit="{transcript}",
            description="Transcript fetches that failed (after their retries).",
        )
        self.in_flight = meter.create_up_down_counter(
            "memories.batch.jobs_in_flight",
            unit="{job}",
            description="Jobs of batches whose fetch is running.",
        )
        meter.create_observable_gauge(
            "memories.rate",
            callbacks=[self._observe_rates],
            unit="{request}/s",
            description="The request rate the rate governor allows now.",
        )

    def _observe_rates(self, _options: object) -> list[Any]:
        from opentelemetry.metrics import Observation

        return [
            Observation(rate, {"memories.rate.shared": governor.shared})
            for governor in list(self.governors)
            if (rate := governor.rate) is not None
        ]


_BY_METER_PROVIDER: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()


def _instruments(provider: MeterProvider) -> _Instruments:
    instruments = _BY_METER_PROVIDER.get(provider)
    if instruments is None:
        instruments = _BY_METER_PROVIDER[provider] = _Instruments(provider)
    return instruments


def _url_full(request: protocol.Request) -> str:
    """``url.full`` of a request: its URL and query, without any user info."""
    parts = urllib.parse.urlsplit(request.url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urllib.parse.urlencode(request.params) if request.params else parts.query
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _server(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port


def _error_attributes(error: BaseException) -> dict[str, Any]:
    attributes: dict[str, Any] = {"error.type": type(error).__qualname__}
    code = getattr(error, "code", None)
    if code is not None:
        attributes["memories.code"] = code
    return attributes


class Telemetry:
    """The tracer and instruments of a client (and of its views)."""

    def __init__(self, tracer_provider: TracerProvider, instruments: _Instruments | None) -> None:
        from opentelemetry import context, trace

        self._trace = trace
        self._context = context
        self.tracer = tracer_provider.get_tracer(SCOPE, _version())
        self.suppress_http: str = getattr(
            context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", "suppress_http_instrumentation"
        )
        """The context key by which HTTP instrumentations know that a span of a higher
        level covers the request (the API's, private; every instrumentation reads it)."""
        self.instruments = instruments
        self._servers: dict[str, tuple[str, int]] = {}

    def watch(self, governor: RateGovernor) -> None:
        """Report ``governor``'s rate in force on the ``memories.rate`` gauge."""
        if self.instruments is not None:
            self.instruments.governors.add(governor)

    def unwatch(self, governor: RateGovernor) -> None:
        """Stop reporting ``governor``'s rate (its client is closed)."""
        if self.instruments is not None:
            self.instruments.governors.discard(governor)

    # -- one call ---------------------------------------------------------------------

    async def call(
        self,
        client: MemoriesClient,
        request: protocol.Request,
        on_retry: OnRetry | None,
        transport: Transport,
    ) -> tuple[Any, int]:
        """``client._call(request, on_retry)`` in an operation span, each attempt in a
        span of its own."""
        endpoint = request.endpoint
        attributes: dict[str, Any] = {"memories.endpoint": endpoint}
        if request.video_no is not None:
            attributes["memories.video_no"] = request.video_no
        kind = KINDS.get(endpoint)
        if kind is not None:
            attributes["memories.kind"] = kind
        links = _JOB_LINKS.get()
        with self.tracer.start_as_current_span(
            OPERATIONS.get(endpoint, f"memories.{endpoint}"),
            context=self._context.Context() if links else None,
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = _Call(self, client, request, transport, span=span, on_retry=on_retry)
            try:
                data, attempts = await client._retrying(call.attempt, call.announce)
            except MemoriesError as exc:
                span.set_attributes(
                    {
                        "memories.attempts": exc.attempts,
                        "memories.quota_wait": call.quota_wait,
                        **_error_attributes(exc),
                    }
                )
                span.record_exception(exc)
                span.set_status(self._trace.StatusCode.ERROR, type(exc).__qualname__)
                counted = kind is not None and not protocol.falls_back_to_caption(exc)
                if self.instruments is not None and counted:
                    failed = {"memories.kind": kind, **_error_attributes(exc)}
                    self.instruments.failed.add(1, failed)
                raise
            span.set_attributes(
                {
                    "memories.attempts": attempts,
                    "memories.quota_wait": call.quota_wait,
                    "memories.code": protocol.SUCCESS,
                }
            )
            if self.instruments is not None and kind is not None:
                self.instruments.fetched.add(1, {"memories.kind": kind})
            return data, attempts

    def server(self, url: str) -> tuple[str, int]:
        """``server.address`` and ``server.port`` of ``url`` (read once per URL)."""
        server = self._servers.get(url)
        if server is None:
            server = self._servers[url] = _server(url)
        return server

    # -- batches and exports ------------------------------------------------------------

    def observe_batch(
        self,
        fetch: Callable[..., Awaitable[tuple[T, int]]],
        prepare: Callable[[int], None],
        kinds: tuple[Any, ...],
    ) -> tuple[
        Callable[..., Awaitable[tuple[T, int]]],
        Callable[[int], None],
        Callable[[TranscriptBatch[T]], None],
    ]:
        """A batch's ``fetch``, ``prepare`` and ``on_close`` with its telemetry: the batch
        span from its start to its close, each job linked to it and counted in flight."""
        trace = self._trace
        instruments = self.instruments
        spans: list[Span] = []
        links: list[tuple[Link, ...]] = []

        def start(max_concurrency: int) -> None:
            prepare(max_concurrency)
            span = self.tracer.start_span(
                BATCH_SPAN,
                attributes={
                    "memories.batch.max_concurrency": max_concurrency,
                    "memories.kind": [str(kind) for kind in kinds],
                },
            )
            spans.append(span)
            links.append((trace.Link(span.get_span_context()),))

        async def job(video_no: str, /, *, kind: Any, on_retry: OnRetry | None) -> tuple[T, int]:
            token = _JOB_LINKS.set(links[0] if links else None)
            counted = {"memories.kind": str(kind)}
            if instruments is not None:
                instruments.in_flight.add(1, counted)
            try:
                return await fetch(video_no, kind=kind, on_retry=on_retry)
            finally:
                if instruments is not None:
                    instruments.in_flight.add(-1, counted)
                _JOB_LINKS.reset(token)

        def close(batch: TranscriptBatch[T]) -> None:
            stats = batch.stats()
            for span in spans:
                span.set_attributes(
                    {
                        "memories.batch.queued": stats.queued,
                        "memories.batch.succeeded": stats.succeeded,
                        "memories.batch.failed": stats.failed,
                        "memories.batch.retries": stats.retries,
                        "memories.batch.rate_limited": stats.rate_limited,
                        "memories.batch.duplicates": stats.duplicates,
                    }
                )
                span.end()

        return job, start, close

    def wait_span(self, video_no: str, *, timeout: float | None, poll: float) -> Any:
        """A context manager: the span of a ``wait_until_ready``, current while it polls
        (each poll is a ``memories.get_metadata`` span under it)."""
        attributes: dict[str, Any] = {"memories.video_no": video_no, "memories.wait.poll": poll}
        if timeout is not None:
            attributes["memories.wait.timeout"] = timeout
        return self.tracer.start_as_current_span(
            WAIT_SPAN,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    def end_wait(self, span: Span, error: MemoriesError | None) -> None:
        """Give a wait's span its outcome: the status it ended on, or its error."""
        if error is None:
            span.set_attribute("memories.status", VideoStatus.PARSE.value)
            return
        status = getattr(error, "status", None)
        if isinstance(status, str):
            span.set_attribute("memories.status", status)
        span.set_attributes(_error_attributes(error))
        span.record_exception(error)
        span.set_status(self._trace.StatusCode.ERROR, type(error).__qualname__)

    def export_span(self, format: object, kinds: Sequence[Any]) -> Any:
        """A context manager: the span of an export run, current while it runs."""
        return self.tracer.start_as_current_span(
            EXPORT_SPAN,
            attributes={
                "memories.export.format": str(format),
                "memories.kind": [str(kind) for kind in kinds],
            },
        )

    @staticmethod
    def end_export(span: Span, stats: ExportStats) -> None:
        """Give an export's span its counts (before it ends)."""
        span.set_attributes(
            {
                "memories.export.exported": stats.exported,
                "memories.export.failed": stats.failed,
                "memories.export.skipped": stats.skipped,
                "memories.export.empty": stats.empty,
                "memories.export.duplicates": stats.duplicates,
            }
        )


class _Call:
    """The attempts of one traced call: the twin of ``MemoriesClient._call``'s attempt
    function, with a span per attempt and the instruments."""

    __slots__ = (
        "_client",
        "_http",
        "_on_retry",
        "_request",
        "_span",
        "_telemetry",
        "_transport",
        "quota_wait",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        client: MemoriesClient,
        request: protocol.Request,
        transport: Transport,
        /,
        *,
        span: Span,
        on_retry: OnRetry | None,
    ) -> None:
        self._telemetry = telemetry
        self._client = client
        self._request = request
        self._transport = transport
        self._span = span
        self._on_retry = on_retry
        address, port = telemetry.server(request.url)
        self._http: dict[str, Any] = {
            "http.request.method": request.method,
            "server.address": address,
            "server.port": port,
        }
        self.quota_wait = 0.0
        """Seconds the attempts waited for the rate governor, in all."""

    async def _slot(self) -> tuple[float, float]:
        """A slot of the rate governor: the time sent and the seconds waited for it."""
        governor = self._client.governor
        wait = 0.0
        sent_at = governor.try_acquire()
        if sent_at is None:
            clock = governor.clock
            waited_from = clock()
            sent_at = await governor.acquire()
            wait = max(0.0, clock() - waited_from)
            self.quota_wait += wait
        instruments = self._telemetry.instruments
        if instruments is not None:
            instruments.quota_wait.record(wait, {"memories.endpoint": self._request.endpoint})
        return sent_at, wait

    async def attempt(self, number: int) -> Any:
        telemetry, client, request = self._telemetry, self._client, self._request
        instruments = telemetry.instruments
        governor = client.governor
        sent_at, wait = await self._slot()
        trace = telemetry._trace
        with telemetry.tracer.start_as_current_span(
            request.method,
            kind=trace.SpanKind.CLIENT,
            attributes={**self._http, "url.full": _url_full(request)},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if number > 1:
                span.set_attribute("http.request.resend_count", number - 1)
            if wait > 0:
                span.set_attribute("memories.quota_wait", wait)
            started = time.perf_counter()
            status: int | None = None
            # This span is the attempt's HTTP client span: an HTTP instrumentation under
            # it (aiohttp-client's, under opentelemetry-instrument) would make a second one.
            context = telemetry._context
            suppressed = context.attach(context.set_value(telemetry.suppress_http, True))
            try:
                response = await self._transport.send(request)
                status = response.status
                data = answer_data(request, response)
            except MemoriesError as exc:
                status = getattr(exc, "status", status)
                measured = {**self._http, **_error_attributes(exc)}
                if status is not None:
                    measured["http.response.status_code"] = status
                span.set_attributes(measured)
                span.set_status(trace.StatusCode.ERROR, type(exc).__qualname__)
                if instruments is not None:
                    instruments.duration.record(time.perf_counter() - started, measured)
                    if exc.rate_limited:
                        instruments.refused.add(1, {"memories.endpoint": request.endpoint})
                await client._failed(exc, sent_at)
                log_attempt(request, number, started, exc)
                raise
            finally:
                context.detach(suppressed)
            span.set_attributes(
                {"http.response.status_code": status, "memories.code": protocol.SUCCESS}
            )
            if instruments is not None:
                measured = {**self._http, "http.response.status_code": status}
                instruments.duration.record(time.perf_counter() - started, measured)
        if governor.shared:
            await governor.answered(sent_at=sent_at, refused=False)
        else:
            governor.on_success(sent_at=sent_at)
        log_attempt(request, number, started, None, status)
        return data

    def announce(self, error: MemoriesError, number: int, wait: float) -> None:
        """The retry callback: an event on the operation span, then the caller's."""
        event: dict[str, Any] = {"memories.attempt": number, **_error_attributes(error)}
        if error.rate_limited:
            if error.retry_after is not None:
                event["memories.retry_after"] = error.retry_after
            self._span.add_event("memories.rate_limited", event)
        else:
            event["memories.wait"] = wait
            self._span.add_event("memories.retry", event)
        if self._on_retry is not None:
            self._on_retry(error, number, wait)
