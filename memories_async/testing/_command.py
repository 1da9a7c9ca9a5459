"""The fake server's one command line: ``python -m memories_async.testing`` and ``memories-async
fake-server`` both run :func:`main` (the options are :class:`FakeServerOptions`' fields)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from memories_async._cli.exits import FAKE_SERVER_EXITS, ExitCode, exit_codes
from memories_async.testing._options import PROG, command_line, options_from
from memories_async.testing._server import FakeServer, run_fake_server


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
) -> ExitCode:
    """Parse ``argv`` and serve until interrupted; return the exit status.

    A bad option or value exits 2 (:attr:`ExitCode.USAGE`, argparse's own status) with
    argparse's usage message (:class:`SystemExit`); an address that cannot be listened on
    returns :attr:`ExitCode.FAILED` after one ``error:`` line. The exit codes are the
    command line's (:mod:`memories_async._cli.exits`, which imports no click).
    """
    parser = command_line(prog, defaults=defaults)
    parser.epilog = exit_codes(FAKE_SERVER_EXITS)
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
        return ExitCode.FAILED
    return ExitCode.OK
