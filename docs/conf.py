"""Sphinx configuration of the memories-async documentation.

Build it with warnings as errors; no network is needed::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

project = "memories-async"
try:
    release = package_version("memories-async")
except PackageNotFoundError:  # building from a source tree that is not installed
    release = "0.0.0"
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx_click",
    "sphinx_copybutton",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Options such as --out must not become dashes (command help is rendered as prose).
smartquotes = False

# -- MyST ------------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- signatures and code blocks --------------------------------------------------------

# A signature longer than this is wrapped, one parameter a line (the client's methods
# take many keyword arguments).
maximum_signature_line_length = 88
# The copy button copies a console block's commands, not its prompts nor its output.
copybutton_prompt_text = r"\$ |>>> |\.\.\. |> "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# -- autodoc ---------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "undoc-members": True}

# A reference that does not resolve is an error for this project's own names. Names
# from the standard library and other packages are not linked (intersphinx would need
# the network), so references to them are let through.
_EXTERNAL_MODULES = [
    "aiohttp",
    "asyncio",
    "attrs",
    "click",
    "collections",
    "datetime",
    "enum",
    "os",
    "pytest",
    "random",
    "types",
    "typing",
]
_BUILTIN_NAMES = [
    "Any",
    "AsyncIterable",
    "AsyncIterator",
    "Awaitable",
    "BaseException",
    "Callable",
    "ClassVar",
    "Collection",
    "Exception",
    "Iterable",
    "Iterator",
    "KeyError",
    "Literal",
    "LookupError",
    "Mapping",
    "OSError",
    "Protocol",
    "RuntimeError",
    "Self",
    "Sequence",
    "TimeoutError",
    "TracebackType",
    "TypeError",
    "ValueError",
    "None",
    "bool",
    "bytes",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "object",
    "set",
    "str",
    "tuple",
    "type",
]
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(_EXTERNAL_MODULES)})(\..*)?"),
    (r"py:(class|exc|obj|data)", rf"({'|'.join(_BUILTIN_NAMES)})"),
    # The type variable of the batch engine's generic classes (Fetched[T]).
    (r"py:class", r"memories_async\._batch\.T"),
    # The OpenTelemetry providers of MemoriesClient(tracer_provider=, meter_provider=),
    # imported for type checkers only (the otel extra is optional).
    (r"py:class", r"(opentelemetry\..*\.)?(TracerProvider|MeterProvider)"),
    # What the client gives a batch to tell the empty answers of videos not ready.
    (r"py:class", r"memories_async\._wait\.Readiness"),
]

# -- HTML ------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"memories-async {release}"
html_show_sphinx = False
html_show_copyright = False

# -- Public names ----------------------------------------------------------------------
#
# The public classes are defined in private modules (memories_async._client...) and
# type hints name them there. Resolve such a reference to the public name the class is
# exported under (memories_async.MemoriesClient).

_PRIVATE_PATH = re.compile(
    r"(memories_async(?:\.testing)?)(?:\._\w+)+\.(\w+(?:\.\w+)*)"
)


def _public_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    match = _PRIVATE_PATH.fullmatch(node.get("reftarget", ""))
    if match is None:
        return None
    target = f"{match[1]}.{match[2]}"
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


# -- Command help ----------------------------------------------------------------------
#
# click keeps a paragraph after a \b line as it is, and sphinx-click renders it as a
# line block (prose). In such a paragraph, the indented lines are commands (the
# "Examples:" of a command's help): render them as a console code block, with a prompt
# that the copy button leaves out.


def click_examples_as_code(lines: list[str]) -> list[str]:
    """sphinx-click's description lines, with the indented lines of every ``\b``
    paragraph (``|   command``) made a ``console`` code block; the others unchanged."""
    made: list[str] = []
    code: list[str] = []

    def flush() -> None:
        if code:
            made.extend(["", ".. code-block:: console", ""])
            made.extend(f"   $ {command}" for command in code)
            made.append("")
            code.clear()

    for line in lines:
        text = line[2:] if line.startswith("| ") else None
        if text is not None and text[:1].isspace() and text.strip():
            code.append(text.strip())
            continue
        flush()
        made.append(line)
    flush()
    return made


def _click_description(app: Any, ctx: Any, lines: list[str]) -> None:
    lines[:] = click_examples_as_code(lines)


def setup(app: Any) -> None:
    app.connect("missing-reference", _public_reference)
    app.connect("sphinx-click-process-description", _click_description)
