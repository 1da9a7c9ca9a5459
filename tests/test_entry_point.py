"""The ``memories-async`` entry point: runs the command line, or names the missing extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memories_async.__main__ import main


def forget_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the modules of the command line that need click or rich, so they import again."""
    for name in [n for n in sys.modules if n.startswith("memories_async._cli.")]:
        if name != "memories_async._cli.exits":
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("package", ["click", "rich"])
def test_a_missing_cli_extra_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], package: str
) -> None:
    forget_the_command_line(monkeypatch)
    # None in sys.modules makes an import fail, as if the package were not installed.
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'memories-async[cli]'" in err
    assert package in err


def test_other_import_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_the_command_line(monkeypatch)
    monkeypatch.setitem(sys.modules, "memories_async._export", None)
    with pytest.raises(ImportError):
        main()


def test_python_dash_m_runs_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "memories_async", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "memories-async" in result.stdout


def _closing(fd: int) -> object:
    """A ``preexec_fn`` that closes ``fd`` in the child, as ``<&-`` or ``>&-`` would."""
    import os

    return lambda: os.close(fd)


@pytest.mark.parametrize(
    ("args", "closed", "message"),
    [
        (["export", "--ids", "-", "--out", "{tmp}/o.jsonl"], 0, "standard input is closed"),
        (["export", "VI1"], 1, "standard output is closed: pass --out FILE"),
        (["get", "VI1"], 1, "standard output is closed"),
    ],
)
def test_a_closed_standard_stream_is_one_line_and_exit_2(
    tmp_path: object, args: list[str], closed: int, message: str
) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORIES_")}
    env.update(MEMORIES_API_KEY="sk-test-closed", MEMORIES_BASE_URL="http://127.0.0.1:9")
    argv = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "memories_async", *argv],
        env=env,
        stdin=subprocess.DEVNULL if closed != 0 else None,
        stdout=subprocess.DEVNULL if closed != 1 else None,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_closing(closed),  # type: ignore[arg-type]
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr
