"""A blocking client for scripts and notebooks: :class:`SyncMemoriesClient`.

::

    from memories_async.sync import SyncMemoriesClient

    with SyncMemoriesClient() as client:
        transcript = client.get_transcription("VI606041694843813888")
        with client.fetch_transcriptions(ids, kind="audio") as batch:
            for outcome in batch:
                ...

Each :class:`SyncMemoriesClient` runs one event loop in a thread of its own (an
anyio blocking portal) and one :class:`~memories_async.MemoriesClient` on it for
its whole life, so its session and its rate governor are those of one loop, whatever
thread calls. Every method is the blocking form of the async client's method of the
same name, with the same arguments: the call runs on the client's loop and the
calling thread waits for its answer.

Callbacks (``on_retry``, ``on_event``, ``on_progress``, ``on_failure``) run on the
client's loop thread: they must not call the client (that raises
:class:`RuntimeError`). An input that is not a collection (a generator, a file, the
iterator of :meth:`SyncMemoriesClient.list_videos`) is read in a thread of its own
batch, so it may block and may call the client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, cast

import aiohttp
from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _export
from ._batch import BatchStats, Outcome, Outcomes, TranscriptBatch
from ._client import MemoriesClient
from ._config import Config, RetryPolicy
from ._models import Transcript, Video

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_END: Any = object()

__all__ = ["SyncIterator", "SyncMemoriesClient", "SyncTranscriptBatch"]


class _InputReader:
    """Reads a blocking input in a thread of its own, for the loop's batch.

    One thread per input, started on the first item and joined by :meth:`close`: a
    generator that blocks (a pipe, a slow file) or calls the sync client (its
    :meth:`~SyncMemoriesClient.list_videos`) never blocks the loop.
    """

    def __init__(self, source: Iterable[Any]) -> None:
        self._iterator = iter(source)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="memories-async-input"
        )

    async def items(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        while True:
            item = await loop.run_in_executor(self._executor, next, self._iterator, _END)
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Wait for the item being read, if any, and end the thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _prepared(source: object) -> tuple[object, _InputReader | None]:
    """The input to give the async client, and the reader to close after it."""
    if isinstance(source, AsyncIterable | Collection | str | bytes):
        return source, None  # in memory (or already async): read on the loop
    if isinstance(source, Iterable):
        reader = _InputReader(source)
        return reader.items(), reader
    return source, None  # the async client says what is wrong with it


class SyncIterator(Generic[T]):
    """A blocking iterator over an async iterator of a :class:`SyncMemoriesClient`.

    Each ``next()`` runs one step on the client's loop. Use it in a ``with`` block (or
    call :meth:`close`) to stop early cleanly; iterating to the end closes it too.
    """

    def __init__(self, owner: SyncMemoriesClient, iterator: AsyncIterator[T], /) -> None:
        self._owner = owner
        self._iterator = iterator
        self._done = False

    def __repr__(self) -> str:
        return f"<SyncIterator {'done' if self._done else 'open'}>"

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._owner._run(functools.partial(_next_or_end, self._iterator))
        if item is _END:
            self._done = True
            raise StopIteration
        return item

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the iteration and release what the async iterator holds; idempotent."""
        if self._done:
            return
        self._done = True
        close = getattr(self._iterator, "aclose", None)
        if close is not None and not self._owner.closed:
            self._owner._run(close)


class SyncTranscriptBatch:
    """The blocking form of :class:`~memories_async.TranscriptBatch`: outcomes by ``for``.

    Made by :meth:`SyncMemoriesClient.fetch_transcriptions`; use it as ``with ... as
    batch:`` and iterate over it. Each step waits on the client's loop for the next
    :data:`~memories_async.Outcome`. Leaving the block (normally, by ``break`` or by
    an exception, Ctrl-C included) cancels the work still running, waits until it has
    ended and ends the thread that read the input.
    """

    def __init__(
        self,
        owner: SyncMemoriesClient,
        batch: TranscriptBatch[Transcript],
        reader: _InputReader | None,
        /,
    ) -> None:
        self._owner = owner
        self._batch = batch
        self._reader = reader
        self._entered = False
        self._closed = False

    def __repr__(self) -> str:
        return repr(self._batch).replace("<TranscriptBatch", "<SyncTranscriptBatch", 1)

    def __enter__(self) -> Self:
        if self._closed:
            raise RuntimeError("the batch is closed; start a new one")
        self._owner._run(self._batch.__aenter__)  # if it raises, nothing was started
        self._entered = True
        self._owner._open_batches.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Outcome:
        self._check_entered()
        outcome: Outcome = self._owner._run(functools.partial(_next_or_end, self._batch))
        if outcome is _END:
            raise StopIteration
        return outcome

    def collect(self) -> Outcomes[Transcript]:
        """Run the whole batch and return every outcome by (video number, kind), in input
        order (see :class:`~memories_async.Outcomes`)."""
        self._check_entered()
        return self._owner._run(self._batch.collect)

    def stats(self) -> BatchStats:
        """Counters, latency percentiles and achieved rate so far."""
        return self._owner._run(functools.partial(_on_loop, self._batch.stats))

    def close(self) -> None:
        """Cancel the work still running and wait until it has ended; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._entered and not self._owner.closed:
                self._owner._run(self._batch.aclose)
        finally:
            if self._reader is not None:
                self._reader.close()
            self._owner._open_batches.discard(self)

    def _check_entered(self) -> None:
        if self._closed:
            raise RuntimeError("the batch is closed; start a new one")
        if not self._entered:
            raise RuntimeError(
                "use the batch as 'with client.fetch_transcriptions(...) as batch:'"
                " before iterating"
            )


async def _next_or_end(iterator: AsyncIterator[R], /) -> R:
    """The next item of ``iterator``, or ``_END`` once it is exhausted (one step of a
    blocking iterator, run on the loop)."""
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return cast(R, _END)


async def _on_loop(function: Callable[[], R], /) -> R:
    """``function()``, called on the loop (what it creates binds to that loop)."""
    return function()


async def _awaited(function: Callable[[], Awaitable[R]], /) -> R:
    return await function()


def _blocking(
    method: Callable[Concatenate[MemoriesClient, P], Awaitable[R]], /
) -> Callable[Concatenate[SyncMemoriesClient, P], R]:
    """The blocking form of an async method of :class:`MemoriesClient` (or function
    taking the client first), with its exact signature; a sync iterable first
    operand is read as :func:`_prepared` says."""

    def call(self: SyncMemoriesClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        reader = None
        if args:
            first, reader = _prepared(args[0])
            args = cast(Any, (first, *args[1:]))
        try:
            return self._run(functools.partial(method, self._client, *args, **kwargs))
        finally:
            if reader is not None:
                reader.close()

    _describe(call, method)
    return call


def _mirror(
    method: Callable[Concatenate[MemoriesClient, P], Any],
    implementation: Callable[Concatenate[SyncMemoriesClient, ...], R],
    returns: Any,
    /,
) -> Callable[Concatenate[SyncMemoriesClient, P], R]:
    """``implementation`` under ``method``'s signature (its result type ``returns``)."""
    _describe(implementation, method, returns)
    return cast(Callable[Concatenate["SyncMemoriesClient", P], R], implementation)


def _describe(call: Callable[..., Any], method: Callable[..., Any], returns: Any = None) -> None:
    """Name ``call`` and give it ``method``'s signature, first parameter dropped (and
    result ``returns``, if given), and a docstring that sends the reader to
    ``method``'s."""
    name = method.__name__
    call.__name__ = name
    call.__qualname__ = f"SyncMemoriesClient.{name}"
    call.__module__ = __name__
    signature = inspect.signature(method, eval_str=True)
    parameters = list(signature.parameters.values())[1:]
    result = signature.return_annotation if returns is None else returns
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *parameters],
        return_annotation=result,
    )
    annotations = {p.name: p.annotation for p in parameters if p.annotation is not p.empty}
    call.__annotations__ = {**annotations, "return": result}
    if method.__qualname__.startswith("MemoriesClient."):
        form = f":meth:`~memories_async.MemoriesClient.{name}`, with the same arguments"
    else:
        form = f":func:`~memories_async.{name}` for this client, with its other arguments"
    summary = (inspect.getdoc(method) or "").split("\n\n", 1)[0]
    if summary.endswith("::"):  # the example that follows it stays with the async method
        summary = summary[:-2] + "."
    call.__doc__ = (
        f"{summary}\n\nThe blocking form of {form} (see there), run on this client's event loop."
    )


class SyncMemoriesClient:
    """A blocking client for the memories.ai API, for scripts and notebooks.

    ``with SyncMemoriesClient() as client: ...``, or call :meth:`close` when done.
    It takes the settings of :class:`~memories_async.MemoriesClient` (keyword
    arguments, ``config``, then the environment), except ``session`` and
    ``governor``, which belong to an event loop (share a quota across clients with
    ``rate_store`` instead).

    It starts an event loop in a thread of its own and creates its
    :class:`~memories_async.MemoriesClient` there; every method runs the async
    method of the same name on that loop and waits for the answer. Several threads
    may call one client at once: their calls run concurrently on its loop and share
    its connections and rate governor. :meth:`close` closes the async client on the
    loop, then ends the loop and joins its thread. A blocking call interrupted in the
    calling thread (Ctrl-C) is cancelled on the loop.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        unique_id: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        burst: int | None = None,
        rate_store: str | None = None,
        rate_name: str | None = None,
        max_connections: int | None = None,
        max_response_bytes: int | None = None,
        user_agent: str | None = None,
        config: Config | None = None,
        trace_configs: Iterable[aiohttp.TraceConfig] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._root = self
        self._lock = threading.Lock()
        self._closed = False
        self._open_batches: set[SyncTranscriptBatch] = set()
        self._stack = contextlib.ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(
            start_blocking_portal(name="memories-async-loop")
        )
        try:
            # Created on the loop, so that whatever it binds to a loop is bound to this one.
            self._client: MemoriesClient = self._portal.call(
                _on_loop,
                functools.partial(
                    MemoriesClient,
                    api_key=api_key,
                    base_url=base_url,
                    unique_id=unique_id,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    retry=retry,
                    rate=rate,
                    burst=burst,
                    rate_store=rate_store,
                    rate_name=rate_name,
                    max_connections=max_connections,
                    max_response_bytes=max_response_bytes,
                    user_agent=user_agent,
                    config=config,
                    trace_configs=trace_configs,
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                ),
            )
        except BaseException:
            self._closed = True
            self._stack.close()
            raise

    def __repr__(self) -> str:
        state = "closed" if self._root._closed else "open"
        config = self._client.config
        return (
            f"<SyncMemoriesClient base_url={config.base_url!r}"
            f" unique_id={config.unique_id!r} {state}>"
        )

    @property
    def config(self) -> Config:
        """The frozen settings of this client."""
        return self._client.config

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (on the client a view was made of)."""
        return self._root._closed

    def __enter__(self) -> Self:
        if self._root._closed:
            raise RuntimeError("the client is closed; create a new SyncMemoriesClient")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the batches still open and the async client, then end the loop thread.

        Idempotent; further calls raise ``RuntimeError``. On a view
        (:meth:`with_options`) it does nothing: the view owns nothing.
        """
        if self._root is not self:
            return
        with self._lock:
            if self._closed:
                return
            batches = list(self._open_batches)
        try:
            for batch in batches:
                batch.close()
            with self._lock:
                self._closed = True
            self._portal.call(self._client.aclose)
        finally:
            self._closed = True
            try:
                # Whatever still runs (a call interrupted in its thread) is cancelled.
                self._portal.call(self._portal.stop, True)
            finally:
                self._stack.close()  # joins the loop thread

    def _run(self, function: Callable[[], Awaitable[R]], /) -> R:
        """Run ``function`` on the loop and wait for its result.

        If the wait is interrupted (``KeyboardInterrupt`` in this thread), the call is
        cancelled on the loop before the interruption goes on.
        """
        if self._root._closed:
            raise RuntimeError("the client is closed; create a new SyncMemoriesClient")
        future: concurrent.futures.Future[R] = self._portal.start_task_soon(_awaited, function)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    # -- the async client's methods, blocking ----------------------------------------

    get_transcription = _blocking(MemoriesClient.get_transcription)
    get_metadata = _blocking(MemoriesClient.get_metadata)
    wait_until_ready = _blocking(MemoriesClient.wait_until_ready)
    list_unique_ids = _blocking(MemoriesClient.list_unique_ids)
    gather_transcriptions = _blocking(MemoriesClient.gather_transcriptions)
    export_transcripts = _blocking(_export.export_transcripts)

    def _list_videos(self, /, *args: Any, **kwargs: Any) -> SyncIterator[Video]:
        iterator: AsyncIterator[Video] = self._run(
            functools.partial(
                _on_loop, functools.partial(self._client.list_videos, *args, **kwargs)
            )
        )
        return SyncIterator(self, iterator)

    def _fetch_transcriptions(self, /, *args: Any, **kwargs: Any) -> SyncTranscriptBatch:
        reader = None
        if args:
            first, reader = _prepared(args[0])
            args = (first, *args[1:])
        try:
            make = functools.partial(self._client.fetch_transcriptions, *args, **kwargs)
            batch = self._run(functools.partial(_on_loop, make))
        except BaseException:
            if reader is not None:
                reader.close()
            raise
        return SyncTranscriptBatch(self, batch, reader)

    def _with_options(self, /, **options: Any) -> SyncMemoriesClient:
        view = object.__new__(SyncMemoriesClient)
        view._root = self._root
        view._lock, view._open_batches = self._lock, self._open_batches
        view._portal, view._stack = self._portal, self._stack
        view._closed = False  # unread: a view is as closed as its root
        make = functools.partial(self._client.with_options, **options)
        view._client = self._run(functools.partial(_on_loop, make))
        return view

    with_options = _mirror(MemoriesClient.with_options, _with_options, "SyncMemoriesClient")
    list_videos = _mirror(MemoriesClient.list_videos, _list_videos, SyncIterator[Video])
    fetch_transcriptions = _mirror(
        MemoriesClient.fetch_transcriptions, _fetch_transcriptions, SyncTranscriptBatch
    )
