"""The documentation as a whole: examples found, reference complete, site built.

The examples themselves run as test items of their own, collected from ``docs/*.md`` by
Sybil (configured in ``docs/conftest.py``). This module checks what those items cannot:
that the parsers do find the examples (a parser that found nothing would pass), that every
name the package exports is documented in ``docs/reference``, and, when Sphinx is installed
(the ``docs`` extra), that the site builds with warnings as errors. And every test
module, ``docs/conftest.py`` included, says in its docstring what it covers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

import memories_async
import memories_async.testing

from .conftest import import_file

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)


def _docs_conftest() -> ModuleType:
    """``docs/conftest.py``, imported under a name of its own."""
    return import_file(DOCS / "conftest.py", "memories_docs_examples")


def test_sybil_finds_every_kind_of_example() -> None:
    examples = _docs_conftest()
    kinds: Counter[str] = Counter()
    for page in PAGES:
        assert examples.sybil.should_parse(page), page
        for example in examples.sybil.parse(page):
            kinds[example.region.evaluator.__name__] += 1
    assert kinds["run_script"] >= 15
    assert kinds["compare_output"] >= 15
    assert kinds["run_console"] >= 8
    assert kinds["write_file"] >= 8
    assert kinds["compile_only"] >= 4
    assert kinds["output_of_nothing"] == 0


@pytest.mark.parametrize(
    "module",
    [*sorted((ROOT / "tests").rglob("*.py")), DOCS / "conftest.py"],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_every_test_module_says_what_it_covers(module: Path) -> None:
    docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")))
    assert docstring, f"{module.relative_to(ROOT)} has no module docstring"


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
