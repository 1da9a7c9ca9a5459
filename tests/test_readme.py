"""The README stays true: its example runs, and CI runs its test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_python_example_runs() -> None:
    (example,) = blocks("python")
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", example],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "segments" in result.stdout
    assert "BatchStats(" in result.stdout
    assert "failed:" not in result.stdout


def test_the_set_up_commands_are_the_main_job_and_the_tests() -> None:
    main_job, tests = blocks("console")[:2]
    assert "memories-async export --demo" in main_job
    assert tests.strip().endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    tests = blocks("console")[1].strip()
    install, runner = tests.split("&& ")[-2:]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"python -m {install.strip()}" in ci
    assert f"python -m {runner.strip()}\n" in ci
