"""The pytest-asyncio variant of the ``memories_client`` fixture.

Loaded by the plugin only when pytest-asyncio runs, so the plugin itself does
not need pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal

import pytest_asyncio

from memories_async.testing._pytest_plugin import open_client

if TYPE_CHECKING:
    from memories_async import MemoriesClient
    from memories_async.testing import FakeServer


LoopScope = Literal["function", "class", "module", "package", "session"]
SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")
"""pytest-asyncio's loop scopes: the client must be opened on the loop its test runs on."""


def _declare(scope: LoopScope) -> None:
    async def client(memories_fake_server: FakeServer) -> AsyncIterator[MemoriesClient]:
        async with open_client(memories_fake_server) as client:
            yield client

    # pytest-asyncio marks the function itself: one function per loop scope.
    name = f"_memories_client_asyncio_{scope}"
    client.__doc__ = f"``memories_client`` for a pytest-asyncio test on a {scope}-scoped loop."
    globals()[name] = pytest_asyncio.fixture(client, loop_scope=scope, name=name)


for _scope in SCOPES:
    _declare(_scope)
