"""The pytest plugin's fixtures, used by an inner pytest run."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import aiohttp
import pytest

from memories_async.testing import FakeLibrary, FakeServer, FakeVideo, KeyState


def test_library(memories_fake_library):
    assert len(memories_fake_library) == 22


@pytest.mark.asyncio
async def test_server(memories_fake_server):
    server = memories_fake_server
    async with aiohttp.ClientSession(server.url, headers={"Authorization": server.api_key}) as s:
        async with s.get("/serve/api/v1/list_unique_ids") as response:
            answer = await response.json()
    assert answer["data"] == {"unique_ids": ["default"]}
    assert isinstance(server, FakeServer) and server.running


@pytest.mark.asyncio
async def test_factory(memories_fake_server_factory):
    first = await memories_fake_server_factory()
    second = await memories_fake_server_factory(
        FakeLibrary([FakeVideo("VI1")]), api_keys={"sk-test-x": KeyState.ACTIVE}
    )
    assert first.port != second.port
    assert len(second.library) == 1
    assert second.api_key == "sk-test-x"
"""

OVERRIDE = """
import pytest

from memories_async.testing import FakeLibrary, FakeVideo


@pytest.fixture
def memories_fake_library():
    return FakeLibrary([FakeVideo("VI42")])


@pytest.mark.asyncio
async def test_overridden(memories_fake_server):
    assert [v.video_no for v in memories_fake_server.library] == ["VI42"]
"""


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs load only pytest-asyncio and the plugin under test."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    return pytester


def run(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "-p",
        "pytest_asyncio.plugin",
        "-p",
        "memories_async.testing._pytest_plugin",
        "-p",
        "no:cacheprovider",
    )


def test_fixtures_serve_a_small_library(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_plugin_use=TESTS)

    run(isolated).assert_outcomes(passed=3)


def test_the_library_fixture_can_be_overridden(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_plugin_override=OVERRIDE)

    run(isolated).assert_outcomes(passed=1)
