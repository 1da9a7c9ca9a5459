"""The package as users get it: an sdist and a wheel built from the source tree (the wheel
from the sdist, as ``python -m build`` does), their contents, and the wheel installed with
the ``cli`` extra into a fresh virtual environment, where ``memories-async export --demo``
runs and the package imports from the environment, not from this checkout.

Building runs hatchling in an isolated environment and installing resolves the
dependencies from the package index: real time and the network to the index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import memories_async

pytestmark = [pytest.mark.slow, pytest.mark.realtime]

ROOT = Path(__file__).parent.parent
VERSION = memories_async.__version__


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_the_wheel_holds_the_package_typed_and_its_entry_points(dist: Path) -> None:
    wheel = one(dist, f"memories_async-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"memories_async-{VERSION}.dist-info"
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
    assert "memories_async/py.typed" in names
    assert "memories_async/testing/__init__.py" in names
    assert "memories_async/_cli/app.py" in names
    assert not any(name.startswith(("tests/", "docs/", "benchmarks/")) for name in names)
    assert "memories-async = memories_async.__main__:main" in entry_points
    assert "memories_async = memories_async.testing._pytest_plugin" in entry_points
    assert "Provides-Extra: cli" in metadata


def test_the_sdist_holds_the_tests_and_the_docs(dist: Path) -> None:
    sdist = one(dist, f"memories_async-{VERSION}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "memories_async/py.typed",
        "tests/conftest.py",
        "tests/test_packaging.py",
        "docs/conf.py",
        "docs/index.md",
        "docs/tutorial.md",
    ):
        assert needed in names, needed
    assert not any(name.startswith((".venv/", "docs/_build/")) for name in names)


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its ``cli`` extra; its bin directory."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    bin_dir = home / ("Scripts" if os.name == "nt" else "bin")
    wheel = one(dist, "memories_async-*.whl")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[cli]"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return bin_dir


def test_the_installed_command_exports_a_demo(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    result = subprocess.run(
        [str(installed / "memories-async"), "export", "--demo", "5", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "demo: a fake service with 5 videos" in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records
    assert all(record["video_no"].startswith("VI") for record in records)


def test_the_installed_package_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    code = "import memories_async; print(memories_async.__version__, memories_async.__file__)"
    result = subprocess.run(
        [str(installed / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    version, path = result.stdout.split()
    assert version == VERSION
    assert Path(path).is_relative_to(installed.parent)
    typed = Path(path).parent / "py.typed"
    assert typed.is_file()
