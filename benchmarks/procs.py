"""Plumbing shared by the benchmark drivers: the server's bench routes, and stopping processes."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any


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
