"""The ``memories-async`` entry point: runs the command line, or names the missing extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memories_async.__main__ import main


@pytest.mark.parametrize("package", ["click", "rich"])
def test_a_missing_cli_extra_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], package: str
) -> None:
    monkeypatch.delitem(sys.modules, "memories_async._cli", raising=False)
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
    monkeypatch.delitem(sys.modules, "memories_async._cli", raising=False)
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
