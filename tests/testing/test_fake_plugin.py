"""The pytest plugin's fixtures, used by inner pytest runs of a small user project.

Each run loads only the plugins named (autoload is off): pytest-asyncio, anyio's
plugin, or neither, as a user's environment would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "memories_async.testing._pytest_plugin"

SYNC_TESTS = """
import json
import urllib.request

from memories_async.testing import FakeLibrary, FakeServer, FakeServerFactory, FakeVideo, KeyState


def test_library(memories_fake_library):
    assert len(memories_fake_library) == 22


def test_server_runs_on_its_own_thread(memories_fake_server: FakeServer) -> None:
    server = memories_fake_server
    request = urllib.request.Request(
        f"{server.url}/serve/api/v1/list_unique_ids", headers={"Authorization": server.api_key}
    )
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer)["data"] == {"unique_ids": ["default"]}
    assert isinstance(server, FakeServer) and server.running
    assert server.stats.total_requests == 1


def test_factory(memories_fake_server_factory: FakeServerFactory) -> None:
    first = memories_fake_server_factory()
    second = memories_fake_server_factory(
        FakeLibrary([FakeVideo("VI1")]), api_keys={"sk-test-x": KeyState.ACTIVE}
    )
    assert first.port != second.port
    assert len(second.library) == 1
    assert second.api_key == "sk-test-x"
"""

ASYNCIO_TESTS = """
import pytest

from memories_async import MemoriesClient
from memories_async.testing import FakeLibrary, FakeServer

USED = []


@pytest.mark.asyncio
async def test_client(memories_client: MemoriesClient, memories_fake_library: FakeLibrary) -> None:
    video = memories_fake_library.videos(status="PARSE")[0]
    transcript = await memories_client.get_transcription(video.video_no, kind="visual")
    assert transcript.segments


@pytest.mark.asyncio
async def test_the_client_talks_to_the_server_fixture(
    memories_client: MemoriesClient, memories_fake_server: FakeServer
) -> None:
    assert await memories_client.get_metadata("VI000000000000000001") is None
    assert memories_fake_server.stats.total_requests == 1
    USED.append((memories_client, memories_fake_server))


@pytest.mark.asyncio(loop_scope="module")
async def test_a_module_scoped_loop(memories_client: MemoriesClient) -> None:
    assert list(await memories_client.list_unique_ids()) == ["default"]


def test_the_client_was_closed_and_the_server_stopped() -> None:
    [(client, server)] = USED
    assert client.closed and not server.running
"""

ANYIO_TESTS = """
import pytest

from memories_async import MemoriesClient
from memories_async.testing import FakeLibrary, FakeServer


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_client(memories_client: MemoriesClient, memories_fake_library: FakeLibrary) -> None:
    video = memories_fake_library.videos(status="PARSE")[0]
    transcript = await memories_client.get_transcription(video.video_no, kind="visual")
    assert transcript.segments


@pytest.mark.anyio
async def test_server(memories_fake_server: FakeServer, memories_client: MemoriesClient) -> None:
    assert list(await memories_client.list_unique_ids()) == ["default"]
    assert memories_fake_server.stats.total_requests == 1
"""

NO_ASYNC_TESTS = """
def test_client(memories_client):
    pass
"""

OVERRIDE = """
import pytest

from memories_async.testing import FakeLibrary, FakeVideo


@pytest.fixture
def memories_fake_library():
    return FakeLibrary([FakeVideo("VI42")])


def test_overridden(memories_fake_server):
    assert [v.video_no for v in memories_fake_server.library] == ["VI42"]
"""


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs load only the plugins they name."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def run(pytester: pytest.Pytester, *plugins: str) -> pytest.RunResult:
    ini = "[pytest]\nfilterwarnings = error\n"
    if "pytest_asyncio.plugin" in plugins:
        ini += "asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    pytester.makeini(ini)
    loads = [arg for plugin in plugins for arg in ("-p", plugin)]
    return pytester.runpytest_inprocess(*loads, "-p", PLUGIN, "-p", "no:cacheprovider")


def test_sync_fixtures_need_no_async_plugin(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_plugin_use=SYNC_TESTS)

    run(isolated).assert_outcomes(passed=3)


def test_under_pytest_asyncio(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_sync=SYNC_TESTS, test_asyncio=ASYNCIO_TESTS)

    run(isolated, "pytest_asyncio.plugin").assert_outcomes(passed=7)


def test_under_anyio(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_sync=SYNC_TESTS, test_anyio=ANYIO_TESTS)

    run(isolated, "anyio.pytest_plugin").assert_outcomes(passed=5)


def test_under_both_plugins_each_test_gets_a_client_on_its_loop(
    isolated: pytest.Pytester,
) -> None:
    isolated.makepyfile(test_asyncio=ASYNCIO_TESTS, test_anyio=ANYIO_TESTS)

    run(isolated, "pytest_asyncio.plugin", "anyio.pytest_plugin").assert_outcomes(passed=6)


@pytest.mark.parametrize("plugins", [(), ("pytest_asyncio.plugin",), ("anyio.pytest_plugin",)])
def test_the_client_outside_an_async_test_says_what_is_needed(
    isolated: pytest.Pytester, plugins: tuple[str, ...]
) -> None:
    isolated.makepyfile(test_sync_client=NO_ASYNC_TESTS)

    result = run(isolated, *plugins)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*memories_client fixture is an open MemoriesClient*"])
    result.stdout.fnmatch_lines(["*@pytest.mark.asyncio*@pytest.mark.anyio*"])
    result.stdout.no_fnmatch_line("*fixture 'memories_client' not found*")


def test_the_library_fixture_can_be_overridden(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_plugin_override=OVERRIDE)

    run(isolated).assert_outcomes(passed=1)


def test_importing_the_plugin_loads_neither_the_fake_nor_the_client_nor_aiohttp() -> None:
    """The plugin is imported at every pytest start: it must stay light (no wall clock)."""
    heavy = [
        "aiohttp",
        "aiohttp.web",
        "memories_async._client",
        "memories_async._batch",
        "memories_async.testing._server",
        "memories_async.testing._service",
        "memories_async.testing._library",
    ]
    code = textwrap.dedent(
        f"""
        import sys
        import {PLUGIN}
        print([name for name in {heavy!r} if name in sys.modules])
        """
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert found == "[]"


def test_the_package_the_plugin_lives_in_loads_its_names_on_first_use() -> None:
    """``memories_async`` imports nothing heavy itself, yet lists and serves every name."""
    import memories_async

    assert set(memories_async.__all__) <= set(dir(memories_async))
    assert memories_async.MemoriesClient.__name__ == "MemoriesClient"
    with pytest.raises(AttributeError, match="no attribute 'NoSuchClient'"):
        memories_async.NoSuchClient  # noqa: B018 - the lookup is the test
