"""What the benchmarks ran on: CPU, cores, Python, library versions, load."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "memories-async",
    "aiohttp",
    "orjson",
    "attrs",
    "cattrs",
    "tenacity",
    "httpx",
    "requests",
    "pydantic",
    "pydantic-core",
    "msgspec",
)


def cpu_model() -> str:
    """The ``model name`` of the first CPU in ``/proc/cpuinfo`` (or the platform's word)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, Any]:
    """A JSON-ready description of this machine and the installed libraries."""
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": versions,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
