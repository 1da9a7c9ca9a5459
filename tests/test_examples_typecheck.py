"""Every Python example of the README and the docs passes ``mypy --strict``.

Running an example (``tests/test_readme.py``, the Sybil items of ``docs/conftest.py``)
proves it works; this proves a user who copies it into a typed project gets no error
from their type checker either: an ``outcome.transcript`` that does not narrow, an
index the return type refuses, a call whose signature changed.

The examples are extracted as the docs' tests find them: every ``python`` block and
every ``{code-block} python`` (Sybil's MyST code-block parser), and the README's
``python`` blocks. Each is written to a file of one temporary directory and all are
checked in one mypy run (in-process, through :func:`mypy.api.run`): a block whose
``:caption:`` names a module that another block of its page imports (``app.py``,
imported by ``test_app.py``) keeps that name, so the import resolves; every other
block gets a name of its own. A failure names the page and the line of the page.

Libraries a page uses that the test environment does not install (FastAPI) are
checked as ``Any`` (``ignore_missing_imports``, untyped decorators allowed): the
memories-async side of the example is still checked strictly. The pytest files of the
docs (``test_*.py``, ``conftest.py``) take their fixtures by name, unannotated as most
projects' tests are: their functions may lack annotations, and their bodies are still
checked (``check_untyped_defs``).
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from mypy import api as mypy_api
from sybil import Document
from sybil.parsers.myst import CodeBlockParser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

NOT_INSTALLED = ("fastapi", "fastapi.*", "uvicorn", "uvicorn.*")
"""Modules the docs' shown-not-run snippets import that the tests do not install."""

_IMPORTS_NOT_INSTALLED = re.compile(
    rf"^\s*(from|import)\s+({'|'.join(m for m in NOT_INSTALLED if '*' not in m)})\b", re.MULTILINE
)
_MODULE_NAME = re.compile(r"^([A-Za-z_]\w*)\.py$")
_PYTEST_FILE = re.compile(r"^(test_\w*|conftest)\.py$")


@attrs.frozen
class Example:
    """One Python block: where it is, what it holds, the file it is checked as."""

    page: str
    line: int
    """Line of the page that holds the block's first line of code."""
    source: str
    caption: str | None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def doc_examples(path: Path) -> list[Example]:
    """The Python blocks of a docs page, as Sybil finds them."""
    document = Document.parse(str(path), CodeBlockParser(language="python"))
    page = path.relative_to(ROOT).as_posix()
    found = []
    for example in document.examples():
        region = example.region
        source = region.lexemes["source"]
        start = region.start + source.offset
        caption = region.lexemes.get("options", {}).get("caption", "").strip() or None
        found.append(Example(page, _line_of(document.text, start), str(source), caption))
    return found


def readme_examples() -> list[Example]:
    """The README's ``python`` blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        Example("README.md", _line_of(text, match.start(1)), match.group(1), None)
        for match in re.finditer(r"```python\n(.*?)```", text, flags=re.DOTALL)
    ]


def all_examples() -> list[Example]:
    examples = readme_examples()
    for path in sorted(DOCS.rglob("*.md")):
        if "_build" not in path.parts:
            examples.extend(doc_examples(path))
    return examples


def file_names(examples: list[Example]) -> dict[Example, str]:
    """The file each example is checked as: its caption when its page imports it."""
    names: dict[Example, str] = {}
    taken: dict[str, str] = {}
    for number, example in enumerate(examples):
        match = _MODULE_NAME.match(example.caption or "")
        module = match.group(1) if match else None
        imported = module is not None and any(
            re.search(rf"^\s*(from|import)\s+{module}\b", other.source, flags=re.MULTILINE)
            for other in examples
            if other.page == example.page and other is not example
        )
        if module is not None and imported:
            name = f"{module}.py"
            assert name not in taken, (
                f"{example.page} and {taken[name]} both import their own {name}:"
                " the type check needs one module per name"
            )
            taken[name] = example.page
        else:
            stem = re.sub(r"\W", "_", example.page.removesuffix(".md"))
            name = f"example_{number:03d}_{stem}_line_{example.line}.py"
        names[example] = name
    return names


def test_every_python_example_is_found() -> None:
    examples = all_examples()
    pages = {example.page for example in examples}
    assert "README.md" in pages
    assert "docs/how-to/web-app.md" in pages
    # Run blocks and shown-only blocks alike.
    assert any(example.caption for example in examples)
    assert len(examples) >= 20


def test_every_python_example_passes_mypy_strict(tmp_path: Path) -> None:
    examples = all_examples()
    names = file_names(examples)
    where: dict[str, Example] = {}
    for example, name in names.items():
        (tmp_path / name).write_text(example.source, encoding="utf-8")
        where[name] = example
    overrides = "".join(
        f"[mypy-{module}]\nignore_missing_imports = True\n" for module in NOT_INSTALLED
    )
    pytest_modules = sorted(
        name.removesuffix(".py")
        for example, name in names.items()
        if _PYTEST_FILE.match(example.caption or "")
    )
    # A decorator of a library checked as Any is untyped: no fault of the example.
    overrides += "".join(
        f"[mypy-{name.removesuffix('.py')}]\ndisallow_untyped_decorators = False\n"
        for example, name in names.items()
        if re.search(_IMPORTS_NOT_INSTALLED, example.source)
    )
    overrides += "".join(
        f"[mypy-{module}]\ndisallow_untyped_defs = False\ndisallow_incomplete_defs = False\n"
        for module in pytest_modules
    )
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\npython_version = 3.11\nwarn_unreachable = True\n" + overrides,
        encoding="utf-8",
    )
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
            *sorted(str(tmp_path / name) for name in where),
        ]
    )
    problems = []
    for line in stdout.splitlines():
        match = re.match(r"^(?:.*/)?([^/:]+\.py):(\d+): (.*)$", line)
        if match and match.group(1) in where:
            example = where[match.group(1)]
            page_line = example.line + int(match.group(2)) - 1
            problems.append(f"{example.page}:{page_line}: {match.group(3)}")
        elif line.strip():
            problems.append(line)
    assert not problems, "\n".join(problems)
    assert status == 0, stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x: int = 'text'\n", "Incompatible types in assignment"),
        (
            "from memories_async import Outcome\n\n\ndef f(o: Outcome) -> str:\n"
            "    return o.transcript.text\n",
            'Item "Failed"',
        ),
    ],
)
def test_the_check_fails_on_a_typing_error(tmp_path: Path, source: str, expected: str) -> None:
    # The same mypy settings catch what they are meant to (the test above could not
    # fail if they checked nothing).
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    stdout, _, status = mypy_api.run(
        ["--strict", "--cache-dir", str(tmp_path / ".c"), str(tmp_path / "bad.py")]
    )
    assert status == 1
    assert expected in stdout
