"""Plumbing shared by the benchmark drivers: the server's command line and bench routes,
and stopping processes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAKE_SERVER = Path(__file__).resolve().parent / "fake_server.py"


def server_argv(videos: int, segments: int, latency: float, *flags: str) -> list[str]:
    """The command line of ``fake_server.py`` serving ``videos`` of ``segments`` segments,
    ``latency`` seconds per answer, with any further ``flags``."""
    argv = [sys.executable, str(FAKE_SERVER), "--videos", str(videos)]
    return [*argv, "--segments", str(segments), "--latency", str(latency), *flags]


def post(url: str) -> None:
    """POST nothing to ``url`` (``/_bench/warm``, ``/_bench/reset``) and wait for the answer."""
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read()


def get_json(url: str, *, timeout: float = 120) -> dict[str, Any]:
    """GET ``url`` (``/_bench/stats``) as a JSON object."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        data: dict[str, Any] = json.loads(answer.read())
        return data


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate ``process`` if it still runs; kill it if it does not end within 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(argv: Sequence[str], *, warm: bool = True) -> Iterator[str]:
    """Start ``fake_server.py`` with ``argv``, warm its cache, yield its base URL, stop it."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the benchmark server did not start (printed {url!r})")
        if warm:
            post(f"{url}/_bench/warm")
        yield url
    finally:
        stop(process)
