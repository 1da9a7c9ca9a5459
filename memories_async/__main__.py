"""The ``memories-async`` command and ``python -m memories_async``.

The command line lives in the :mod:`memories_async._cli` package and needs
the ``cli`` extra (click, rich); without it, this says how to install it
instead of failing with a traceback.
"""

from __future__ import annotations

import sys

from memories_async._cli.exits import ExitCode

_CLI_PACKAGES = frozenset({"click", "rich"})


def main() -> None:
    """Run the command line, or explain in one line which extra it needs."""
    try:
        from memories_async._cli.app import main as run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _CLI_PACKAGES:
            raise
        sys.stderr.write(
            f"memories-async: the command line needs the 'cli' extra ({exc.name} is missing):"
            " pip install 'memories-async[cli]'\n"
        )
        raise SystemExit(ExitCode.USAGE) from None
    run()


if __name__ == "__main__":
    main()
