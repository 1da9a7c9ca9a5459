"""Running the fake service on a real socket: in-process, in a thread, or until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from aiohttp import web

from memories_async.testing._library import FakeLibrary
from memories_async.testing._options import FakeServerOptions
from memories_async.testing._service import FakeService
from memories_async.testing._settings import (
    FaultRule,
    KeyState,
    Latency,
    RateLimits,
    WireFormat,
)

# Waits are cancelled before shutdown, so handlers finish at once; this only
# bounds a handler that somehow keeps running.
_SHUTDOWN_TIMEOUT = 5.0


class FakeServer(FakeService):
    """A :class:`FakeService` listening on ``host:port`` (``127.0.0.1`` and a free port by default).

    Use it as ``async with FakeServer(library) as server:`` and point a client
    at :attr:`url` with :attr:`api_key`. Leaving the block stops listening,
    cancels requests that are waiting (latency, hangs), closes every
    connection and leaves no task behind. A server runs once: it cannot be
    started again after it stopped. Every keyword of :class:`FakeService` is
    accepted.
    """

    def __init__(
        self,
        library: FakeLibrary | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Mapping[str, KeyState] | Iterable[str] | None = None,
        rate_limits: RateLimits | None = None,
        latency: Latency | None = None,
        faults: Sequence[FaultRule] = (),
        wire_format: WireFormat | None = None,
        hang_seconds: float = 3600.0,
        seed: int = 0,
        cache_bytes: int = 256 * 2**20,
        record_timeline: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            library,
            api_keys=api_keys,
            rate_limits=rate_limits,
            latency=latency,
            faults=faults,
            wire_format=wire_format,
            hang_seconds=hang_seconds,
            seed=seed,
            cache_bytes=cache_bytes,
            record_timeline=record_timeline,
            clock=clock,
            sleep=sleep,
        )
        self.host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._used = False

    @property
    def port(self) -> int:
        """The port listened on; raises :class:`RuntimeError` if the server is not running."""
        if self._port is None or self._runner is None:
            msg = "the server is not running; use 'async with FakeServer() as server:'"
            raise RuntimeError(msg)
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234`` (clients append ``/serve/api/v1/…``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    async def start(self) -> None:
        """Bind and start listening; raises :class:`RuntimeError` if started before."""
        if self._used:
            msg = "a FakeServer runs once; create a new one to serve again"
            raise RuntimeError(msg)
        self._used = True
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def aclose(self) -> None:
        """Stop listening, cancel waiting requests and close every connection; idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._interrupt_waits()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return (
            f"<FakeServer {where} videos={len(self.library)} requests={self.stats.total_requests}>"
        )


class FakeServerFactory(Protocol):
    """The type of the ``memories_fake_server_factory`` pytest fixture.

    ``factory(library=None, **options)`` starts a ``FakeServer(library, **options)``
    on its own thread (a :class:`FakeServerThread`) and returns it, running;
    every server it started is stopped after the test. Annotate a test's
    parameter with it: ``def test_x(memories_fake_server_factory: FakeServerFactory)``.
    """

    def __call__(self, library: FakeLibrary | None = None, **options: Any) -> FakeServer:
        """Start and return a server built with ``FakeServer(library, **options)``."""
        ...


class FakeServerThread:
    """Runs a :class:`FakeServer` on its own event loop in a background thread.

    For synchronous code and benchmarks that want the server off the client's
    event loop: ``with FakeServerThread(FakeServer(library)) as server:``
    yields the running server (its :attr:`~FakeServer.url`,
    :attr:`~FakeServer.api_key`, :attr:`~FakeServer.stats`). The server
    counts a request before it answers it, so once a client has its answer
    the stats include it; read them, and change settings (faults, keys, the
    library...), from the calling thread between requests, not while some are
    in flight. Leaving the block stops the server and joins the thread.
    """

    def __init__(self, server: FakeServer, /) -> None:
        self.server = server
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> FakeServer:
        """Start the thread, wait until the server listens, and return it.

        Re-raises in the caller whatever prevented the server from starting.
        """
        if self._thread is not None:
            msg = "this FakeServerThread was already started"
            raise RuntimeError(msg)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name="memories-fake-server", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.server

    def stop(self) -> None:
        """Stop the server and join the thread; idempotent."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        thread.join()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        try:
            self._ready.set()
            await self._stop.wait()
        finally:
            await self.server.aclose()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FakeServerThread {self.server!r}>"


def finish_processing(server: FakeServer, /, *, over: float) -> int:
    """Make the videos of ``server``'s library still processing (``UNPARSE``) finish one
    after another, evenly, over the next ``over`` seconds of its clock; returns how many."""
    pending = [video.video_no for video in server.library if video.status == "UNPARSE"]
    for index, number in enumerate(pending):
        server.processing(number, ready_after=over * (index + 1) / len(pending))
    return len(pending)


def build_fake_server(options: FakeServerOptions | None = None, /) -> FakeServer:
    """Build (without starting) a :class:`FakeServer` from plain :class:`FakeServerOptions`.

    ``build_fake_server(FakeServerOptions(videos=10, qps=5))``; without options, the
    defaults (1000 generated videos, no limit, no latency, no fault).
    """
    options = FakeServerOptions() if options is None else options
    server = FakeServer(
        options.library(),
        host=options.host,
        port=options.port,
        api_keys=options.api_keys or None,
        rate_limits=options.rate_limits(),
        latency=options.delay(),
        faults=options.faults(),
        wire_format=options.wire_format(),
        hang_seconds=options.hang_seconds,
        seed=options.seed,
        record_timeline=options.record_timeline,
    )
    if options.processing is not None:
        finish_processing(server, over=options.processing)
    if options.arrivals is not None:
        server.upload_every(options.arrivals, processing=options.processing)
    return server


def run_fake_server(
    options: FakeServerOptions | None = None,
    /,
    *,
    on_ready: Callable[[FakeServer], object] | None = None,
) -> None:
    """Run a fake server in the current thread until SIGINT or SIGTERM, then stop cleanly.

    The server is :func:`build_fake_server` of ``options``; ``on_ready`` is called with
    the running server (for instance to print its URL and key). Returns normally when
    interrupted. Signals are only caught when called from the main thread; elsewhere,
    run a :class:`FakeServerThread` instead.
    """
    server = build_fake_server(options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(server, on_ready))


async def _serve_until_signalled(
    server: FakeServer, on_ready: Callable[[FakeServer], object] | None
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    caught: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on POSIX
                continue
            caught.append(signum)
    try:
        async with server:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
    finally:
        for signum in caught:
            loop.remove_signal_handler(signum)
