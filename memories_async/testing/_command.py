"""The fake server's one command line: ``python -m memories_async.testing`` and ``memories-async
fake-server`` both run :func:`main` (the options are :class:`FakeServerOptions`' fields)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from memories_async.testing._options import PROG, command_line, options_from
from memories_async.testing._server import FakeServer, run_fake_server

EXIT_CANNOT_LISTEN = 1
"""The exit status when the address cannot be listened on (2 is a usage error, from argparse)."""


def announce(server: FakeServer) -> None:
    """Print the base URL on stdout (first), then the key and a hint on stderr."""
    print(server.url, flush=True)
    print(
        f"fake memories.ai API with {len(server.library)} videos; api key: {server.api_key}\n"
        f"try: MEMORIES_BASE_URL={server.url} MEMORIES_API_KEY={server.api_key}"
        " memories-async export --all --out export.jsonl\nCtrl-C stops it",
        file=sys.stderr,
        flush=True,
    )


def main(
    argv: Sequence[str] | None = None,
    /,
    *,
    prog: str = PROG,
    defaults: Mapping[str, Any] | None = None,
) -> int:
    """Parse ``argv`` and serve until interrupted; return the exit status.

    A bad option or value exits 2 with argparse's usage message (:class:`SystemExit`);
    an address that cannot be listened on returns 1 after one ``error:`` line.
    """
    parser = command_line(prog, defaults=defaults)
    arguments = parser.parse_args(argv)
    try:
        options = options_from(arguments)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run_fake_server(options, on_ready=announce)
    except OSError as exc:
        print(
            f"error: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_CANNOT_LISTEN
    return 0
