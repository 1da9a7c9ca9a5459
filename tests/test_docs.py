"""The documentation's examples run as tests, so that the docs cannot rot.

Every Markdown page under ``docs/`` is read for fenced code blocks, handled in page order,
in a fresh working directory per page, against a fresh fake server per page
(:class:`~memories_async.testing.FakeServer` on 127.0.0.1). The server stands for "your
account": examples reach it through ``MEMORIES_BASE_URL`` and ``MEMORIES_API_KEY``, as
they would reach the real service, and it holds the video number the docs use
(:data:`TUTORIAL_VIDEO`) beside a small generated library.

The kinds of block, by their info string:

``python``
    Run as a script (``python -W error example_N.py``) in a new process. It must exit 0
    within :data:`BLOCK_TIMEOUT` and print no traceback, "unclosed" or "never awaited"
    complaint on stderr.
``output``
    Right after a ``python`` block: what that block prints on stdout, exactly (trailing
    spaces ignored).
``console``
    Every ``$ command`` (a trailing ``\\`` continues it on the next line) runs in one bash
    script, in order. Each must exit 0, unless the next command is ``echo $?``: then the
    status that one shows is the one expected. Lines shown under a command are compared with
    its stdout, where a line ``...`` stands for any number of lines; a command shown without
    output is not compared (stderr, where progress and summaries go, never is).
``{code-block} LANG`` with ``:caption: NAME``
    A file of the example, written to ``NAME`` in the page's directory. A file named
    ``test_*.py`` is then run with pytest (strict asyncio mode, warnings as errors), which
    must pass.
``{code-block} LANG`` without a file name
    Shown, not run: a snippet that needs a real key or a framework that is not installed.
    Python snippets must still compile.

Also checked: every name the package exports is documented in ``docs/reference``, and,
when Sphinx is installed (the ``docs`` extra), the site builds with warnings as errors.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import memories_async
import memories_async.testing
from memories_async.testing import (
    FakeLibrary,
    FakeSegment,
    FakeServer,
    FakeServerThread,
    FakeVideo,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)

BLOCK_TIMEOUT = 120.0
"""Seconds one example may run."""

MAX_LINE = 88
"""Characters a line of Python code may hold in the docs."""

TUTORIAL_VIDEO = "VI606041694843813888"
"""The video number the docs use for "your" video; the per-page fake server holds it."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w-]+)\}\s*(?P<argument>.*)$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_FILE_NAME = re.compile(r"^[\w.-]+\.\w+$")
_COMPLAINTS = ("Traceback", "Exception ignored", "Unclosed", "never awaited", "was destroyed")


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    """Line number of the opening fence (1-based)."""
    language: str
    directive: str | None
    """``code-block`` for ``{code-block} LANG`` fences, ``None`` for plain ones."""
    options: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file_name(self) -> str | None:
        caption = self.options.get("caption", "").strip()
        return caption if self.directive and _FILE_NAME.match(caption) else None


def read_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order (fences nested in directives too)."""
    return _parse(page, page.read_text(encoding="utf-8").splitlines(), 0)


def _parse(page: Path, lines: list[str], offset: int) -> list[Block]:
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        match = _FENCE.match(lines[number])
        number += 1
        if match is None:
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        opened_at = number
        body: list[str] = []
        while number < len(lines):
            line = lines[number]
            number += 1
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        directive = None
        language = info.split()[0] if info else ""
        options: dict[str, str] = {}
        found = _DIRECTIVE.match(info)
        skipped = 0
        if found is not None:
            directive, language = found["name"], found["argument"].strip()
            while body and (option := _OPTION.match(body[0])):
                options[option["key"]] = option["value"]
                body.pop(0)
                skipped += 1
        if directive not in (None, "code-block", "code"):
            # Another directive (a note, a tab...) may hold fences of its own.
            blocks.extend(_parse(page, body, offset + opened_at + skipped))
            continue
        text = "\n".join(body) + "\n"
        blocks.append(Block(page, offset + opened_at, language, directive, options, text))
    return blocks


def _library() -> FakeLibrary:
    """The "account" every page talks to: a small library plus the docs' tutorial video."""
    library = FakeLibrary.generate(12, seed=7, public=1)
    library.add(
        FakeVideo(
            TUTORIAL_VIDEO,
            video_name="washing_day.mp4",
            duration=26,
            visual=[
                FakeSegment(0, 8, "Under a rocky overhang, three people are washing clothes."),
                FakeSegment(8, 17, "A woman wrings out a red shirt and lays it on a rock."),
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
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "80"
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on timeout kill its whole process group and fail."""
    process = subprocess.Popen(
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
        pytest.fail(f"{shlex.join(command)} ran longer than {BLOCK_TIMEOUT:g}s\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _report(block: Block, result: subprocess.CompletedProcess[str], problem: str) -> str:
    return (
        f"{block.where}: {problem}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n"
        f"{result.stderr}"
    )


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_python(block: Block, expected: str | None, cwd: Path, env: dict[str, str]) -> None:
    script = cwd / f"example_{block.line}.py"
    script.write_text(block.text, encoding="utf-8")
    result = _run([sys.executable, "-W", "error", script.name], cwd, env)
    assert result.returncode == 0, _report(block, result, f"exit status {result.returncode}")
    for complaint in _COMPLAINTS:
        assert complaint not in result.stderr, _report(block, result, f"stderr has {complaint!r}")
    if expected is not None:
        assert _normalized(result.stdout) == _normalized(expected), _report(
            block, result, "the output differs from the ```output block below it"
        )


def console_commands(block: Block) -> list[tuple[str, str]]:
    """The ``$`` commands of a console block with the output shown under each."""
    commands: list[tuple[str, list[str]]] = []
    continuing = False
    for line in block.text.splitlines():
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
    """A pattern for output shown under a command; a line ``...`` stands for any lines."""
    parts = []
    for line in shown.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(re.escape(line.rstrip()) + r"[ \t]*\n")
    return re.compile("".join(parts))


def run_console(block: Block, cwd: Path, env: dict[str, str]) -> None:
    commands = console_commands(block)
    assert commands, f"{block.where}: a console block without a '$ command'"
    statuses = cwd / ".statuses"
    script = ["set -o pipefail", "exec 3>.statuses"]
    for index, (command, _shown) in enumerate(commands):
        script.append(f"{{ {command}\n}} > .stdout.{index}")
        script.append(f'__s=$?; echo "{index} $__s" >&3; (exit $__s)')
    result = _run(["bash", "-c", "\n".join(script)], cwd, env)
    found = dict(line.split() for line in statuses.read_text().splitlines())
    statuses.unlink()
    for index, (command, shown) in enumerate(commands):
        status = found.get(str(index))
        assert status is not None, _report(block, result, f"did not reach: $ {command}")
        stdout_file = cwd / f".stdout.{index}"
        stdout = stdout_file.read_text(encoding="utf-8", errors="replace")
        stdout_file.unlink()
        expected = "0"
        if index + 1 < len(commands) and commands[index + 1][0].strip() == "echo $?":
            expected = commands[index + 1][1].strip()
        assert status == expected, _report(
            block, result, f"$ {command}\nexited {status}, the page says {expected}\n{stdout}"
        )
        if shown.strip():
            actual = "".join(f"{line.rstrip()}\n" for line in stdout.splitlines())
            assert _shown_pattern(shown).fullmatch(actual), _report(
                block, result, f"$ {command}\nprinted:\n{stdout}\nthe page shows:\n{shown}"
            )


def run_pytest(block: Block, cwd: Path, env: dict[str, str]) -> None:
    ini = cwd / "pytest.ini"
    if not ini.exists():
        ini.write_text(
            "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
            "filterwarnings = error\n",
            encoding="utf-8",
        )
    assert block.file_name is not None
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", block.file_name]
    result = _run(command, cwd, env)
    assert result.returncode == 0, _report(block, result, "pytest failed")


def runnable(blocks: list[Block]) -> Iterator[tuple[Block, str | None]]:
    """The blocks to act on, each python block with the output block that follows it."""
    for index, block in enumerate(blocks):
        if block.directive is None and block.language == "output":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        expected = None
        if (
            block.directive is None
            and block.language == "python"
            and following is not None
            and following.directive is None
            and following.language == "output"
        ):
            expected = following.text
        yield block, expected


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


def _pages_with_examples() -> list[Path]:
    pages = []
    for page in PAGES:
        blocks = read_blocks(page)
        if any(block.file_name or block.language in ("python", "console") for block in blocks):
            pages.append(page)
    return pages


# -- tests ----------------------------------------------------------------------------------


def test_the_docs_hold_runnable_examples() -> None:
    blocks = [block for page in PAGES for block in read_blocks(page)]
    plain = [b for b in blocks if b.directive is None]
    assert sum(b.language == "python" for b in plain) >= 15
    assert sum(b.language == "console" for b in plain) >= 5
    assert sum(b.language == "output" for b in plain) >= 3


def test_output_blocks_follow_python_blocks() -> None:
    for page in PAGES:
        blocks = read_blocks(page)
        for previous, block in zip([None, *blocks], blocks, strict=False):
            if block.directive is None and block.language == "output":
                assert previous is not None, f"{block.where}: output of nothing"
                assert previous.language == "python", f"{block.where}: output of no python"


def test_python_lines_fit_the_page() -> None:
    """Longer lines scroll sideways in the rendered page."""
    for page in PAGES:
        for block in read_blocks(page):
            if block.language == "python":
                for offset, line in enumerate(block.text.splitlines()):
                    assert len(line) <= MAX_LINE, f"{block.where}+{offset}: {len(line)} chars"


def test_snippets_that_are_not_run_still_compile() -> None:
    for page in PAGES:
        for block in read_blocks(page):
            if block.directive and block.language == "python":
                compile(block.text, block.where, "exec", flags=ast.PyCF_ONLY_AST)


@pytest.mark.parametrize("page", _pages_with_examples(), ids=_page_id)
def test_examples_run(page: Path, tmp_path: Path) -> None:
    with FakeServerThread(FakeServer(_library())) as server:
        env = _environment(server)
        for block, expected in runnable(read_blocks(page)):
            if block.file_name is not None:
                path = tmp_path / block.file_name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.text, encoding="utf-8")
                if re.fullmatch(r"test_\w*\.py", path.name):
                    run_pytest(block, tmp_path, env)
            elif block.directive is not None:
                continue
            elif block.language == "python":
                run_python(block, expected, tmp_path, env)
            elif block.language == "console":
                run_console(block, tmp_path, env)


def _documented_names() -> set[str]:
    names = set()
    pattern = re.compile(r"^\.\. auto(?:class|exception|function|data|attribute)::\s+(\S+)", re.M)
    for page in (DOCS / "reference").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        module = "memories_async"
        for line in text.splitlines():
            current = re.match(r"^\.\. (?:current)?module::\s+(\S+)", line)
            if current:
                module = current[1]
            found = pattern.match(line)
            if found:
                name = found[1]
                names.add(name if name.startswith("memories_async") else f"{module}.{name}")
    return names


@pytest.mark.parametrize(
    "module", [memories_async, memories_async.testing], ids=lambda m: m.__name__
)
def test_every_public_name_is_in_the_reference(module: object) -> None:
    documented = _documented_names()
    exported = {f"{module.__name__}.{name}" for name in module.__all__}  # type: ignore[attr-defined]
    missing = sorted(exported - documented - {"memories_async.__version__"})
    assert not missing, f"not in docs/reference: {missing}"


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    for name in ("sphinx", "myst_parser", "furo", "sphinx_click"):
        pytest.importorskip(name)
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        str(DOCS),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, textwrap.indent(result.stderr, "  ")
