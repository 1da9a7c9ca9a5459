"""Pytest fixtures that run the fake memories.ai server.

Registered through the ``pytest11`` entry point, so installing the package makes
them available to every test suite:

``memories_fake_library``
    A small generated :class:`~memories_async.testing.FakeLibrary` (20 private
    and 2 public videos, seed 0). Override it in a ``conftest.py`` to serve
    other videos.
``memories_fake_server``
    A running :class:`~memories_async.testing.FakeServer` over
    ``memories_fake_library``, on its own thread (a
    :class:`~memories_async.testing.FakeServerThread`), stopped after the test.
    It is a plain fixture: it works under pytest-asyncio, anyio's pytest plugin
    or neither.
``memories_fake_server_factory``
    ``factory(library=None, **options)`` starts a server with any
    :class:`~memories_async.testing.FakeServer` options, on its own thread, and
    returns it; every server it started is stopped after the test. Its type is
    :class:`~memories_async.testing.FakeServerFactory`.
``memories_client``
    An open :class:`~memories_async.MemoriesClient` pointed at
    ``memories_fake_server``, retrying without waits
    (``RetryPolicy(backoff=False)``), closed after the test. A client lives on
    the test's event loop, so this fixture needs an async test: one run by
    pytest-asyncio (``@pytest.mark.asyncio``) or by anyio's plugin
    (``@pytest.mark.anyio``, asyncio backend). Elsewhere it fails with a
    message saying so.

The module imports only pytest: the fake server, aiohttp's server and the client
are imported when a fixture first runs, so the plugin adds next to nothing to the
start of a test run that does not use it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from memories_async import MemoriesClient
    from memories_async.testing import FakeLibrary, FakeServer, FakeServerFactory

_ASYNCIO_PLUGIN = "pytest_asyncio.plugin"
_ASYNCIO_FIXTURES = "memories_async.testing._pytest_asyncio"

_NEEDS_AN_ASYNC_TEST = (
    "the memories_client fixture is an open MemoriesClient, which lives on the "
    "test's event loop: use it from an async test run by pytest-asyncio "
    "(pip install pytest-asyncio; mark the test @pytest.mark.asyncio) or by "
    "anyio's pytest plugin (pip install anyio; mark the test @pytest.mark.anyio). "
    "A synchronous test can use memories_fake_server, which runs on its own thread."
)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the pytest-asyncio variant of the client fixture, if pytest-asyncio runs."""
    plugin = sys.modules.get(_ASYNCIO_PLUGIN)
    if plugin is not None and config.pluginmanager.is_registered(plugin):
        config.pluginmanager.import_plugin(_ASYNCIO_FIXTURES)


@pytest.fixture
def memories_fake_library() -> FakeLibrary:
    """A small deterministic library: 20 private videos and 2 public ones, seed 0."""
    from memories_async.testing._library import FakeLibrary

    return FakeLibrary.generate(20, seed=0, public=2)


@pytest.fixture
def memories_fake_server(memories_fake_library: FakeLibrary) -> Iterator[FakeServer]:
    """A fake server over ``memories_fake_library``, running on its own thread."""
    from memories_async.testing._server import FakeServer, FakeServerThread

    with FakeServerThread(FakeServer(memories_fake_library)) as server:
        yield server


@pytest.fixture
def memories_fake_server_factory() -> Iterator[FakeServerFactory]:
    """Start fake servers with custom options; all are stopped after the test."""
    from memories_async.testing._server import FakeServer, FakeServerThread

    threads: list[FakeServerThread] = []

    def start(library: FakeLibrary | None = None, **options: Any) -> FakeServer:
        thread = FakeServerThread(FakeServer(library, **options))
        server = thread.start()
        threads.append(thread)
        return server

    try:
        yield start
    finally:
        for thread in reversed(threads):
            thread.stop()


@pytest.fixture
def memories_client(request: pytest.FixtureRequest) -> MemoriesClient:
    """An open client for ``memories_fake_server``, on the async test's event loop."""
    if "anyio_backend" in request.fixturenames:
        client: MemoriesClient = request.getfixturevalue("_memories_client_anyio")
        return client
    marker = request.node.get_closest_marker("asyncio")
    if marker is not None and request.config.pluginmanager.has_plugin(_ASYNCIO_FIXTURES):
        scope = marker.kwargs.get("loop_scope") or request.config.getini(
            "asyncio_default_test_loop_scope"
        )
        client = request.getfixturevalue(f"_memories_client_asyncio_{scope or 'function'}")
        return client  # noqa: RET504 - typed
    pytest.fail(_NEEDS_AN_ASYNC_TEST, pytrace=False)


@pytest.fixture
async def _memories_client_anyio(memories_fake_server: FakeServer) -> AsyncIterator[MemoriesClient]:
    """``memories_client`` for an anyio test: anyio's plugin runs this async fixture."""
    async with open_client(memories_fake_server) as client:
        yield client


@contextlib.asynccontextmanager
async def open_client(server: FakeServer) -> AsyncIterator[MemoriesClient]:
    """A client for ``server`` that retries at once (the fixtures' client)."""
    from memories_async import MemoriesClient, RetryPolicy

    async with MemoriesClient(
        api_key=server.api_key, base_url=server.url, retry=RetryPolicy(backoff=False)
    ) as client:
        yield client
