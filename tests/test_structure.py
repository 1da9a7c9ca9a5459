"""The package's layout: click and rich stay in the command line; modules import no cycle.

Read from the source with :mod:`ast`, so nothing is imported and no import has a side
effect. An import is *module-level* when it runs as the module is imported: at the top,
in a class body, or under ``if``/``try``, but not in a function body (a lazy import) and
not under ``if TYPE_CHECKING:``. Lazy imports are allowed, and used on purpose: the
command line imports :mod:`memories_async.testing` only for ``--demo``, ``bench`` and
``fake-server``, and the SDK imports optional extras (redis, matplotlib) only when asked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import memories_async

ROOT = Path(memories_async.__file__).parent
PACKAGE = "memories_async"
CLI = f"{PACKAGE}._cli"
UI_LIBRARIES = frozenset({"click", "rich"})


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def in_cli(name: str) -> bool:
    return name == CLI or name.startswith(CLI + ".")


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``: every one, or only the module-level ones."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif module_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif module_level and isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                yield from imports(ast.Module(body=[child], type_ignores=[]), module_level=True)
        else:
            yield from imports(node, module_level=module_level)


def targets(name: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The absolute names of what ``node``, in module ``name``, imports."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = name if is_package(name) else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in MODULES else base


def parsed(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))


def graph() -> dict[str, set[str]]:
    """Each module's module-level imports of the package's own modules."""
    edges: dict[str, set[str]] = {}
    for name in MODULES:
        found = set()
        for node in imports(parsed(name), module_level=True):
            found.update(t for t in targets(name, node) if t in MODULES)
        edges[name] = found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or with a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def imports_ui(name: str, *, module_level: bool) -> list[str]:
    """The click or rich modules that module ``name`` imports."""
    return [
        target
        for node in imports(parsed(name), module_level=module_level)
        for target in targets(name, node)
        if target.partition(".")[0] in UI_LIBRARIES
    ]


def test_the_walk_sees_the_layout() -> None:
    assert {CLI, f"{CLI}.app", f"{CLI}.export", f"{PACKAGE}._bench", f"{PACKAGE}.testing"} <= set(
        MODULES
    )
    assert imports_ui(f"{CLI}.export", module_level=True)
    assert f"{PACKAGE}._config" in graph()[f"{CLI}.common"]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not in_cli(n)))
def test_no_module_outside_the_command_line_imports_click_or_rich(name: str) -> None:
    # Anywhere in the module, lazy imports included.
    assert imports_ui(name, module_level=False) == []


def test_the_sdk_reaches_no_click_through_the_command_line() -> None:
    # Outside modules may import a click-free part of the CLI (its exit codes), nothing more.
    edges = graph()
    for name in (n for n in MODULES if not in_cli(n)):
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            assert not imports_ui(current, module_level=True), f"{name} -> ... -> {current}"
            todo.extend(edges[current])


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_a_cycle_would_be_found() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert cycles(edges) == [["a", "b", "c"], ["d"]]


def test_type_checking_and_function_imports_are_not_module_level() -> None:
    tree = ast.parse(
        "import a\n"
        "if TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "def f():\n    import d\n"
        "class K:\n    import e\n"
        "try:\n    import f\nexcept ImportError:\n    pass\n"
    )
    names = [alias.name for node in imports(tree, module_level=True) for alias in node.names]
    assert names == ["a", "c", "e", "f"]
    every = [alias.name for node in imports(tree, module_level=False) for alias in node.names]
    assert sorted(every) == ["a", "b", "c", "d", "e", "f"]
