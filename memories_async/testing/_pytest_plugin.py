"""Pytest fixtures that run the fake memories.ai server.

Registered through the ``pytest11`` entry point, so installing the package makes
them available to every test suite:

``memories_fake_library``
    A small generated :class:`~memories_async.testing.FakeLibrary` (20 private
    and 2 public videos, seed 0). Override it in a ``conftest.py`` to serve
    other videos.
``memories_fake_server``
    A running :class:`~memories_async.testing.FakeServer` over
    ``memories_fake_library``, stopped after the test.
``memories_fake_server_factory``
    An async callable ``await factory(library=None, **options)`` that starts a
    server with any :class:`~memories_async.testing.FakeServer` options; every
    server it started is stopped after the test.

The two async fixtures need pytest-asyncio; without it only
``memories_fake_library`` is defined.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from memories_async.testing._library import FakeLibrary
from memories_async.testing._server import FakeServer


class FakeServerFactory(Protocol):
    """Starts a :class:`FakeServer`; the type of ``memories_fake_server_factory``."""

    async def __call__(self, library: FakeLibrary | None = None, **options: Any) -> FakeServer:
        """Start and return a server built with ``FakeServer(library, **options)``."""
        ...


@pytest.fixture
def memories_fake_library() -> FakeLibrary:
    """A small deterministic library: 20 private videos and 2 public ones, seed 0."""
    return FakeLibrary.generate(20, seed=0, public=2)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def memories_fake_server(
        memories_fake_library: FakeLibrary,
    ) -> AsyncIterator[FakeServer]:
        """A running fake server over ``memories_fake_library``."""
        async with FakeServer(memories_fake_library) as server:
            yield server

    @pytest_asyncio.fixture
    async def memories_fake_server_factory() -> AsyncIterator[FakeServerFactory]:
        """Start fake servers with custom options; all are stopped after the test."""
        servers: list[FakeServer] = []

        async def start(library: FakeLibrary | None = None, **options: Any) -> FakeServer:
            server = FakeServer(library, **options)
            await server.start()
            servers.append(server)
            return server

        try:
            yield start
        finally:
            for server in reversed(servers):
                await server.aclose()
