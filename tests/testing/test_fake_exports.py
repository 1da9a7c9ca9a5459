"""The public namespace of memories_async.testing is deliberate."""

from __future__ import annotations

import inspect

import pytest

import memories_async.testing as testing

EXPECTED = {
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
}


def test_exported_names() -> None:
    assert set(testing.__all__) == EXPECTED
    assert testing.__all__ == sorted(testing.__all__, key=lambda name: (not name.isupper(), name))


def test_every_export_exists_and_is_documented() -> None:
    for name in testing.__all__:
        member = getattr(testing, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__doc__, name
            assert member.__module__.startswith("memories_async.testing._"), name


def test_names_load_on_first_use_and_are_listed() -> None:
    assert set(testing.__all__) <= set(dir(testing))
    with pytest.raises(AttributeError, match="no attribute 'FakeNothing'"):
        testing.FakeNothing  # noqa: B018 - the lookup is the test
