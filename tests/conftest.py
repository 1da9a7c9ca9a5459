"""Fixtures shared by the test suite."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

from memories_async import MemoriesClient, RetryPolicy

API_KEY = "sk-test-not-a-real-key-0001"
BASE_URL = "http://api.test"


class _FinishedStreamWriter:
    """Stands for the request writer of a request that was already sent."""

    output_size = 0


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp >= 3.14 requires ``stream_writer``, which aioresponses 0.7 does not pass."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _FinishedStreamWriter())
        super().__init__(method, url, **kwargs)


_NEEDS_SHIM = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, made to work with every aiohttp release the package supports."""
    if _NEEDS_SHIM:
        monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """A retry policy without waits."""
    return RetryPolicy(backoff=False)


@pytest_asyncio.fixture
async def client(fast_retry: RetryPolicy) -> AsyncIterator[MemoriesClient]:
    """A client for the mocked API at ``BASE_URL``, with retries that do not wait."""
    async with MemoriesClient(api_key=API_KEY, base_url=BASE_URL, retry=fast_retry) as c:
        yield c


def url(endpoint: str) -> str:
    """The full URL of ``endpoint`` on the mocked API."""
    return f"{BASE_URL}/serve/api/v1/{endpoint}"


def envelope(data: Any = None, *, code: str = "0000", msg: str = "success") -> dict[str, Any]:
    """An API answer."""
    if code != "0000":
        return {"code": code, "msg": msg}
    return {"code": code, "msg": msg, "data": data, "success": True, "failed": False}
