"""The documentation's examples run as tests (with Sybil), so that the docs cannot rot.

pytest collects every Markdown page under ``docs/`` (``docs`` is in the
``testpaths``) and :data:`sybil` turns each fenced code block that is an example into
a test item, run in page order. Each page gets, when its first example runs, a fresh
working directory and a fresh fake server (:class:`~memories_async.testing.FakeServer`
on 127.0.0.1, in a :class:`~memories_async.testing.FakeServerThread`). The server
stands for "your account": examples reach it through ``MEMORIES_BASE_URL`` and
``MEMORIES_API_KEY``, as they would reach the real service, and it holds the video
number the docs use (:data:`TUTORIAL_VIDEO`) beside a small generated library.

The kinds of block, by their info string, and the parser that finds each:

``python`` (:class:`PythonParser`, evaluated by :func:`run_script`)
    Run as a script (``python -W error example_N.py``) in a new process. It must exit
    0 within :data:`BLOCK_TIMEOUT` and print no traceback, "unclosed" or "never
    awaited" complaint on stderr.
``output`` (:class:`OutputParser`, :func:`compare_output`)
    Right after a ``python`` block: what that block prints on stdout, exactly
    (trailing spaces ignored). An ``output`` block after anything else fails.
``console`` (:class:`ConsoleParser`, :func:`run_console`)
    Every ``$ command`` (a trailing ``\\`` continues it on the next line) runs in one
    bash script, in order, with ``memories-async`` on the ``PATH``. Each must exit 0,
    unless the next command is ``echo $?``: then the status that one shows is the one
    expected. Lines shown under a command are compared with its stdout, where a line
    ``...`` stands for any number of lines; a command shown without output is not
    compared (stderr, where progress and summaries go, never is).
``{code-block} LANG`` with ``:caption: NAME`` (:class:`FileParser`, :func:`write_file`)
    A file of the example, written to ``NAME`` in the page's directory. A file named
    ``test_*.py`` is then run with pytest (strict asyncio mode, warnings as errors),
    which must pass.
``{code-block} python``, no file name (:class:`PythonParser`, :func:`compile_only`)
    Shown, not run: a snippet that needs a real key or a framework that is not
    installed. It must still compile.

Every Python block, run or not, keeps its lines within :data:`MAX_LINE` characters
(longer lines scroll sideways in the rendered page). Other blocks (``text``,
``{code-block} console`` that needs a real key, directives) are not examples.

The items run in the same pytest session as the unit tests, so under the project's
pytest configuration (warnings are errors, strict markers). The examples of a page
depend on one another (a file written by one block is run by the next), so markers are
given per page (:data:`PAGE_MARKERS`), never to a single block.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerThread,
    FakeVideo,
)
from sybil import Document, Example, Region, Sybil
from sybil.parsers.abstract.lexers import LexerCollection
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer
from sybil.parsers.myst import CodeBlockParser
from sybil.parsers.myst.lexers import DirectiveLexer

DOCS = Path(__file__).resolve().parent

BLOCK_TIMEOUT = 120.0
"""Seconds one example may run."""

MAX_LINE = 88
"""Characters a line of Python code may hold in the docs."""

TUTORIAL_VIDEO = "VI606041694843813888"
"""The video number the docs use for "your" video; the per-page fake server holds it."""

PAGE_MARKERS = {
    # Both batches pace at real rates (5 requests a second, and a governor finding a
    # strict quota), and the bench command sweeps three concurrency levels.
    "how-to/tune-concurrency.md": ["realtime"],
}
"""Markers given to every example of a page (its path under ``docs/``)."""

_FILE_NAME = re.compile(r"^[\w.-]+\.\w+$")
_TEST_FILE = re.compile(r"^test_\w*\.py$")
_COMPLAINTS = (
    "Traceback",
    "Exception ignored",
    "Unclosed",
    "never awaited",
    "was destroyed",
)

# Keys of a page's namespace.
_CWD = "cwd"
_ENV = "env"
_SERVER = "server"
_STDOUT = "stdout of the python block just run"


# -- set-up and tear-down of a page ---------------------------------------------


def _library() -> FakeLibrary:
    """The "account" every page talks to: a small library and the tutorial's video."""
    library = FakeLibrary.generate(12, seed=7, public=1)
    library.add(
        FakeVideo(
            TUTORIAL_VIDEO,
            video_name="washing_day.mp4",
            duration=26,
            visual=[
                FakeSegment(
                    0, 8, "Under a rocky overhang, three people are washing clothes."
                ),
                FakeSegment(
                    8, 17, "A woman wrings out a red shirt and lays it on a rock."
                ),
                FakeSegment(17, 26, "Children splash in the shallow water nearby."),
            ],
            audio=[
                FakeSegment(0, 5, " Is the water cold today?"),
                FakeSegment(5, 9, " Freezing, but the sun is out."),
            ],
        )
    )
    return library


def _environment(server: FakeServer) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MEMORIES_", "COV_", "COVERAGE_", "PYTEST_"))
    }
    env["MEMORIES_API_KEY"] = server.api_key
    env["MEMORIES_BASE_URL"] = server.url
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "80"
    return env


def set_up_page(namespace: dict[str, Any]) -> None:
    """A working directory and a running fake server for the examples of one page."""
    thread = FakeServerThread(FakeServer(_library()))
    server = thread.start()
    namespace[_SERVER] = thread
    namespace[_CWD] = Path(tempfile.mkdtemp(prefix="memories-docs-"))
    namespace[_ENV] = _environment(server)


def tear_down_page(namespace: dict[str, Any]) -> None:
    namespace.pop(_SERVER).stop()
    shutil.rmtree(namespace.pop(_CWD))


# -- running commands -----------------------------------------------------------


def _run(
    command: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on timeout kill its whole process group and fail."""
    process = subprocess.Popen(  # noqa: S603 - the commands of the docs
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"{shlex.join(command)} ran longer than {BLOCK_TIMEOUT:g}s\n{stderr}"
        )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _report(result: subprocess.CompletedProcess[str], problem: str) -> str:
    return (
        f"{problem}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _check_python(example: Example) -> None:
    """A Python block compiles and its lines fit the page."""
    source: str = example.parsed
    for offset, line in enumerate(source.splitlines()):
        assert len(line) <= MAX_LINE, (
            f"line {example.line + 1 + offset}: {len(line)} chars"
        )
    ast.parse(source, f"{example.path}:{example.line}")


# -- evaluators -----------------------------------------------------------------


def run_script(example: Example) -> None:
    """Evaluate a ``python`` block: run it as a script, keep its stdout."""
    namespace = example.namespace
    namespace.pop(_STDOUT, None)
    _check_python(example)
    cwd: Path = namespace[_CWD]
    script = cwd / f"example_{example.line}.py"
    script.write_text(example.parsed, encoding="utf-8")
    result = _run([sys.executable, "-W", "error", script.name], cwd, namespace[_ENV])
    assert result.returncode == 0, _report(result, f"exit status {result.returncode}")
    for complaint in _COMPLAINTS:
        assert complaint not in result.stderr, _report(
            result, f"stderr has {complaint!r}"
        )
    namespace[_STDOUT] = result.stdout


def compare_output(example: Example) -> None:
    """Evaluate an ``output`` block: the stdout of the ``python`` block above."""
    stdout = example.namespace.pop(_STDOUT, None)
    assert stdout is not None, "the python block above it did not run to its end"
    assert _normalized(stdout) == _normalized(example.parsed), (
        f"the python block above printed:\n{stdout}\nthe page shows:\n{example.parsed}"
    )


def compile_only(example: Example) -> None:
    """Evaluate a ``{code-block} python`` that is shown, not run."""
    example.namespace.pop(_STDOUT, None)
    _check_python(example)


def output_of_nothing(example: Example) -> None:
    """Evaluate an ``output`` block that does not follow a ``python`` block."""
    pytest.fail("an output block must follow a python block")


def console_commands(text: str) -> list[tuple[str, str]]:
    """The ``$`` commands of a console block with the output shown under each."""
    commands: list[tuple[str, list[str]]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            command, shown = commands[-1]
            commands[-1] = (f"{command}\n{line}", shown)
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append((line[2:], []))
            continuing = line.endswith("\\")
        elif commands:
            commands[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in commands]


def _shown_pattern(shown: str) -> re.Pattern[str]:
    """A pattern for the output shown under a command (``...``: any lines)."""
    parts = []
    for line in shown.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(re.escape(line.rstrip()) + r"[ \t]*\n")
    return re.compile("".join(parts))


def run_console(example: Example) -> None:
    """Evaluate a ``console`` block: its commands run in one bash script."""
    namespace = example.namespace
    namespace.pop(_STDOUT, None)
    commands = console_commands(example.parsed)
    assert commands, "a console block without a '$ command'"
    cwd: Path = namespace[_CWD]
    statuses = cwd / ".statuses"
    script = ["set -o pipefail", "exec 3>.statuses"]
    for index, (command, _shown) in enumerate(commands):
        script.append(f"{{ {command}\n}} > .stdout.{index}")
        script.append(f'__s=$?; echo "{index} $__s" >&3; (exit $__s)')
    result = _run(["bash", "-c", "\n".join(script)], cwd, namespace[_ENV])
    found = dict(line.split() for line in statuses.read_text().splitlines())
    statuses.unlink()
    for index, (command, shown) in enumerate(commands):
        status = found.get(str(index))
        assert status is not None, _report(result, f"did not reach: $ {command}")
        stdout_file = cwd / f".stdout.{index}"
        stdout = stdout_file.read_text(encoding="utf-8", errors="replace")
        stdout_file.unlink()
        expected = "0"
        if index + 1 < len(commands) and commands[index + 1][0].strip() == "echo $?":
            expected = commands[index + 1][1].strip()
        assert status == expected, _report(
            result, f"$ {command}\nexited {status}, the page says {expected}\n{stdout}"
        )
        if shown.strip():
            actual = "".join(f"{line.rstrip()}\n" for line in stdout.splitlines())
            assert _shown_pattern(shown).fullmatch(actual), _report(
                result, f"$ {command}\nprinted:\n{stdout}\nthe page shows:\n{shown}"
            )


def write_file(example: Example) -> None:
    """Evaluate a ``{code-block}`` with a file name: write it, run a test file."""
    namespace = example.namespace
    namespace.pop(_STDOUT, None)
    name: str
    language: str
    name, language = example.region.lexemes["file"], example.region.lexemes["arguments"]
    if language.strip() == "python":
        _check_python(example)
    cwd: Path = namespace[_CWD]
    (cwd / name).write_text(example.parsed, encoding="utf-8")
    if not _TEST_FILE.match(name):
        return
    ini = cwd / "pytest.ini"
    if not ini.exists():
        ini.write_text(
            "[pytest]\nasyncio_mode = strict\n"
            "asyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n",
            encoding="utf-8",
        )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
    result = _run(command, cwd, namespace[_ENV])
    assert result.returncode == 0, _report(result, "pytest failed")


# -- parsers --------------------------------------------------------------------


def _is_directive(region: Region) -> bool:
    return "directive" in region.lexemes


def _file_name(region: Region) -> str | None:
    caption = region.lexemes.get("options", {}).get("caption", "").strip()
    return caption if _FILE_NAME.match(caption) else None


class PythonParser(CodeBlockParser):
    """``python`` blocks run; unnamed ``{code-block} python`` ones compile."""

    language = "python"

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            if not _is_directive(region):
                region.evaluator = run_script
                yield region
            elif _file_name(region) is None:
                region.evaluator = compile_only
                yield region
            # A named file is FileParser's.


class ConsoleParser(CodeBlockParser):
    """``console`` blocks run; ``{code-block} console`` ones are only shown."""

    language = "console"

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            if not _is_directive(region):
                region.evaluator = run_console
                yield region


class OutputParser(CodeBlockParser):
    """``output`` blocks, each compared with the ``python`` block right before it."""

    language = "output"

    def __init__(self) -> None:
        super().__init__()
        self._fences = RawFencedCodeBlockLexer(
            re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE), mapping={"info": "info"}
        )

    def __call__(self, document: Document) -> Iterable[Region]:
        fences = sorted(self._fences(document), key=lambda region: region.start)
        for region in super().__call__(document):
            if _is_directive(region):
                continue
            before = [fence for fence in fences if fence.end <= region.start]
            follows_python = (
                bool(before) and before[-1].lexemes["info"].strip() == "python"
            )
            region.parsed = _verbatim(document, region)
            region.evaluator = compare_output if follows_python else output_of_nothing
            yield region


def _verbatim(document: Document, region: Region) -> str:
    """A block's text as written (the lexers dedent it; output keeps spaces)."""
    start = region.start + region.lexemes["source"].offset
    end = document.text.rindex("\n", start - 1, region.end) + 1
    indent = region.start - (document.text.rfind("\n", 0, region.start) + 1)
    return "".join(line[indent:] for line in document.text[start:end].splitlines(True))


class FileParser:
    """``{code-block} LANG`` blocks whose ``:caption:`` is a file name."""

    def __init__(self) -> None:
        self._lexers = LexerCollection(
            [DirectiveLexer(directive=r"(sourcecode|code-block|code)", arguments=".+")]
        )

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self._lexers(document):
            name = _file_name(region)
            if name is not None:
                region.lexemes["file"] = name
                region.parsed = region.lexemes["source"]
                region.evaluator = write_file
                yield region


sybil = Sybil(
    parsers=[PythonParser(), ConsoleParser(), OutputParser(), FileParser()],
    patterns=["*.md"],
    excludes=["_build/*"],
    setup=set_up_page,
    teardown=tear_down_page,
)
"""Every example of the pages under ``docs/``."""

pytest_collect_file = sybil.pytest()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(DOCS):
            page = item.path.relative_to(DOCS).as_posix()
            for marker in PAGE_MARKERS.get(page, ()):
                item.add_marker(marker)
