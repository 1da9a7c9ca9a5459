"""The documentation site's set-up: command help examples rendered as code, a copy button,
wrapped signatures, a landing page that does not repeat the sidebar, and a tutorial that
installs from a checkout."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from types import ModuleType

import click

from memories_async._cli.app import cli

from .conftest import import_file

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def sphinx_conf() -> ModuleType:
    return import_file(DOCS / "conf.py", "docs_conf")


def sphinx_click_lines(command: click.Command) -> list[str]:
    """The description lines sphinx-click makes of a command's help (its ``\\b`` rule)."""
    lines, bar = [], False
    for line in inspect.cleandoc(command.help or "").splitlines():
        if line == "\b":
            bar = True
            continue
        bar = bar and line != ""
        lines.append(f"| {line}" if bar else line)
    return lines


def test_help_examples_become_console_code_blocks() -> None:
    with cli.make_context("memories-async", ["export"], resilient_parsing=True) as ctx:
        export = cli.get_command(ctx, "export")
    assert export is not None
    lines = sphinx_conf().click_examples_as_code(sphinx_click_lines(export))
    text = "\n".join(lines)
    block = text.partition(".. code-block:: console\n\n")[2].partition("\n\n")[0]
    assert block.splitlines() == [
        "   $ memories-async export --demo 200 --format srt --out transcripts/",
        "   $ memories-async export --all --kind both --out library.jsonl --rate 1",
        "   $ memories-async export --ids ids.txt --format csv --out segments.csv",
        "   $ memories-async export --ids library.jsonl.failures.tsv --out library.jsonl",
        "   $ memories-async export --ids uploaded.txt --wait --wait-timeout 3600 --out new.jsonl",
        "   $ memories-async export --all --follow --interval 300 --out library.jsonl",
    ]
    assert "| Examples:" in lines
    # A \b paragraph of prose stays a line block.
    assert any(line.startswith("| Resuming: rerun the same command.") for line in lines)
    assert not any(line.startswith("|   ") for line in lines)


def test_the_group_example_too() -> None:
    lines = sphinx_conf().click_examples_as_code(sphinx_click_lines(cli))
    assert "   $ memories-async export --demo 200 --format srt --out transcripts/" in lines


def test_copy_button_and_wrapped_signatures() -> None:
    conf = sphinx_conf()
    assert "sphinx_copybutton" in conf.extensions
    assert 60 <= conf.maximum_signature_line_length <= 100
    assert re.match(conf.copybutton_prompt_text, "$ memories-async export")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith("sphinx-copybutton") for requirement in extras["docs"])


def test_the_index_does_not_repeat_the_sidebar() -> None:
    index = (DOCS / "index.md").read_text()
    toctrees = re.findall(r"```\{toctree\}\n(.*?)```", index, flags=re.DOTALL)
    assert len(toctrees) == 4
    assert all(":hidden:" in toctree for toctree in toctrees)
    # The landing text links to each part instead.
    for page in ("tutorial.md", "how-to/export.md", "reference/cli.md", "explanation/design.md"):
        assert f"]({page})" in index


def test_the_tutorial_installs_from_a_checkout_first() -> None:
    tutorial = (DOCS / "tutorial.md").read_text()
    installs = re.findall(r"pip install (\S+)", tutorial)
    assert installs[0] == "-e"
    assert "pip install -e '.[cli]'" in tutorial
    assert tutorial.index("pip install -e '.[cli]'") < tutorial.index(
        "pip install 'memories-async[cli]'"
    )
