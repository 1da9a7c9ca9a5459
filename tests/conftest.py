"""Fixtures shared by the test suite: a mocked API, a client for it, and real Redis servers.

``mock_api`` is aioresponses made to work with every supported aiohttp, ``url`` and
``envelope`` build its routes and answers, and ``client`` talks to it with retries that
do not wait. ``redis_server``/``redis_url`` (one per session), ``fresh_redis_url`` (that
server, emptied), ``redis_password_url`` and ``redis_factory`` (servers a test may stop)
run ``redis-server`` on 127.0.0.1 for the shared rate store: skipped without it, failed
on CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

from memories_async import MemoriesClient, RetryPolicy, Transcript

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


def import_file(path: Path, name: str) -> ModuleType:
    """The Python file at ``path`` (not on ``sys.path``), imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeTime:
    """A clock that only moves when someone sleeps on it (give both to a RateGovernor:
    the client's retries wait on its governor's time too)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def fetched(
    client: MemoriesClient, video_no: str, /, **kwargs: Any
) -> tuple[Transcript, int]:
    """``client.get_transcription(video_no, **kwargs)`` and the attempts it made, counted
    through its ``on_retry`` (which must report attempts 1, 2, ... in turn)."""
    retried: list[int] = []

    def on_retry(_error: object, attempt: int, _wait: float) -> None:
        retried.append(attempt)

    transcript = await client.get_transcription(video_no, on_retry=on_retry, **kwargs)
    assert retried == list(range(1, len(retried) + 1))
    return transcript, len(retried) + 1


def url(endpoint: str) -> str:
    """The full URL of ``endpoint`` on the mocked API."""
    return f"{BASE_URL}/serve/api/v1/{endpoint}"


def envelope(data: Any = None, *, code: str = "0000", msg: str = "success") -> dict[str, Any]:
    """An API answer."""
    if code != "0000":
        return {"code": code, "msg": msg}
    return {"code": code, "msg": msg, "data": data, "success": True, "failed": False}


# -- a real Redis server, for the shared rate store ------------------------------------------

REDIS_SERVER = shutil.which("redis-server")
REDIS_PASSWORD = "s3cret-Redis-pw-Qx7"
"""The password of the :func:`redis_password_url` server (and of factory servers asked for one)."""
_REDIS_START_TIMEOUT = 20.0
"""Seconds a redis-server may take to answer PING (a fixture's patience, not a test's bound)."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _require_redis_server() -> str:
    """The path of redis-server; skips the test without it (fails it on CI)."""
    if REDIS_SERVER is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: CI must run the Redis tests")
        pytest.skip(message)
    return REDIS_SERVER


class RedisServer:
    """A redis-server process on 127.0.0.1, without persistence, that a test may stop and restart.

    ``url`` is ``redis://127.0.0.1:<port>/0``, with the password in it when there is one.
    ``stop`` ends the process; ``start`` starts it again on the same port (empty).
    """

    def __init__(self, binary: str, directory: Path, *, password: str | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.password = password
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "redis-server.log"

    @property
    def url(self) -> str:
        auth = "" if self.password is None else f":{self.password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (on a free port the first time, on the same port after that)."""
        assert self._process is None, "already running"
        fixed = bool(self.port)
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port()
            if self._launch():
                return
        log = self._log.read_text(errors="replace") if self._log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log[-2000:]}")

    def _launch(self) -> bool:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]
        if self.password is not None:
            args += ["--requirepass", self.password]
        with self._log.open("ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._process = process
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:  # e.g. the port was taken meanwhile
                process.wait()
                self._process = None
                return False
            try:
                if self.command("PING") == "+PONG":
                    return True
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        return False

    def stop(self) -> None:
        """End the process (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def command(self, *args: str) -> str:
        """Send one command (after AUTH when needed); return the first line of the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            stream = sock.makefile("rb")
            try:
                commands: list[tuple[str, ...]] = []
                if self.password is not None:
                    commands.append(("AUTH", self.password))
                commands.append(args)
                line = ""
                for command in commands:
                    parts = [f"*{len(command)}\r\n".encode()]
                    for arg in command:
                        data = arg.encode()
                        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
                    sock.sendall(b"".join(parts))
                    line = stream.readline().decode().rstrip("\r\n")
                    if not line:
                        raise ConnectionResetError("redis-server closed the connection")
                    if line.startswith("-"):
                        raise RuntimeError(f"redis-server refused {command[0]}: {line}")
                return line
            finally:
                stream.close()

    def flush(self) -> None:
        """Empty every database (and the script cache), so that tests are independent."""
        self.command("FLUSHALL")
        self.command("SCRIPT", "FLUSH")


@contextlib.contextmanager
def _running_redis(
    factory: pytest.TempPathFactory, *, password: str | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(_require_redis_server(), factory.mktemp("redis"), password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, without a password."""
    with _running_redis(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of :func:`redis_server`; ``fresh_redis_url`` flushes it."""
    return redis_server.url


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> str:
    """:func:`redis_url`, emptied (FLUSHALL) before the test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session that requires :data:`REDIS_PASSWORD`."""
    with _running_redis(tmp_path_factory, password=REDIS_PASSWORD) as server:
        yield server


@pytest.fixture
def redis_password_url(redis_password_server: RedisServer) -> str:
    """``redis://:<password>@127.0.0.1:<port>/0``, emptied (FLUSHALL) before the test."""
    redis_password_server.flush()
    return redis_password_server.url


@pytest.fixture
def redis_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RedisServer]]:
    """Start dedicated redis-servers (``redis_factory(password=None)``), that a test may stop.

    Every server started is stopped at the end of the test.
    """
    binary = _require_redis_server()
    started: list[RedisServer] = []

    def start(*, password: str | None = None) -> RedisServer:
        server = RedisServer(binary, tmp_path_factory.mktemp("redis"), password=password)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# -- the command line in a process of its own -------------------------------------------

GIVE_UP = 120.0
"""Seconds a test waits for a process: only to turn a hang into a failure, never reached."""


def start_cli(url: str, key: str, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """``memories-async ARGS`` in a process of its own against the service at ``url``, its
    stdout and stderr appended to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    env.update(MEMORIES_API_KEY=key, MEMORIES_BASE_URL=url)
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "memories_async._cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Return once ``condition()`` holds; fail if ``process`` ends first."""
    deadline = time.monotonic() + GIVE_UP
    while not condition():
        assert process.poll() is None, "the export ended before the condition held"
        assert time.monotonic() < deadline, "the export made no progress"
        time.sleep(0.005)


def finish(process: subprocess.Popen[bytes]) -> int:
    """The exit status of ``process`` (killed if it does not end in time)."""
    try:
        return process.wait(timeout=GIVE_UP)
    finally:
        if process.poll() is None:  # pragma: no cover - only when a test fails
            process.kill()
            process.wait()
