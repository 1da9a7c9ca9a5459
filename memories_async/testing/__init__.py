"""A faithful fake of the memories.ai API, for tests, demos and benchmarks.

The fake answers every endpoint the SDK uses, in the shapes the live service
sends (see the API quirks page of the documentation): string codes in a JSON envelope, times as
strings of whole seconds, snake_case ``list_videos`` records with numbers as
strings. It authenticates keys, partitions videos by ``unique_id``, rate
limits per endpoint or for the whole account (strictly, with a noisy
neighbour if asked: :meth:`RateLimits.strict`), adds latency and injects
faults on demand, and counts what it saw, per endpoint and per key, so tests
can assert on it.

Typical use::

    from memories_async.testing import FakeLibrary, FakeServer, FaultKind, FaultRule

    library = FakeLibrary.generate(1000, seed=0)
    async with FakeServer(
        library,
        faults=[FaultRule(FaultKind.HTTP_503, probability=0.1)],
    ) as server:
        ...  # point a client at server.url with server.api_key
        assert server.stats.peak_in_flight <= 8

:class:`FakeServerThread` and :func:`run_fake_server` (also
``python -m memories_async.testing``, whose options are the fields of
:class:`FakeServerOptions`) run the fake outside the test's event loop. The
pytest fixtures (``memories_fake_server``, ``memories_fake_server_factory`` of type
:class:`FakeServerFactory`, ``memories_client``...) come from the plugin
``memories_async.testing._pytest_plugin``; :meth:`FakeService.answer` and
:meth:`FakeService.fail` script one video's transcript or fault, and
:meth:`FakeService.processing` and :meth:`FakeService.add_video` videos that finish
processing, or arrive, after a while of the server's clock.

The names are loaded on first use, so the pytest plugin, which imports this
package at every pytest start, costs neither aiohttp's server nor the fake.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memories_async.testing._library import FakeLibrary, FakeSegment, FakeVideo, Generated
    from memories_async.testing._options import FakeServerOptions
    from memories_async.testing._server import (
        FakeServer,
        FakeServerFactory,
        FakeServerThread,
        build_fake_server,
        run_fake_server,
    )
    from memories_async.testing._service import DEFAULT_API_KEY, FakeService
    from memories_async.testing._settings import (
        DEFAULT_RANDOM_FAULTS,
        Endpoint,
        FaultKind,
        FaultRule,
        KeyState,
        Latency,
        RateLimits,
        TranscriptShape,
        WireFormat,
    )
    from memories_async.testing._stats import FakeStats, TimelineEntry

_HOMES = {
    "_library": ("FakeLibrary", "FakeSegment", "FakeVideo", "Generated"),
    "_options": ("FakeServerOptions",),
    "_server": (
        "FakeServer",
        "FakeServerFactory",
        "FakeServerThread",
        "build_fake_server",
        "run_fake_server",
    ),
    "_service": ("DEFAULT_API_KEY", "FakeService"),
    "_settings": (
        "DEFAULT_RANDOM_FAULTS",
        "Endpoint",
        "FaultKind",
        "FaultRule",
        "KeyState",
        "Latency",
        "RateLimits",
        "TranscriptShape",
        "WireFormat",
    ),
    "_stats": ("FakeStats", "TimelineEntry"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_RANDOM_FAULTS",
    "Endpoint",
    "FakeLibrary",
    "FakeSegment",
    "FakeServer",
    "FakeServerFactory",
    "FakeServerOptions",
    "FakeServerThread",
    "FakeService",
    "FakeStats",
    "FakeVideo",
    "FaultKind",
    "FaultRule",
    "Generated",
    "KeyState",
    "Latency",
    "RateLimits",
    "TimelineEntry",
    "TranscriptShape",
    "WireFormat",
    "build_fake_server",
    "run_fake_server",
]
