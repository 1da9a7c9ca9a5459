"""The exit codes of every ``memories-async`` command (and of the fake server's command line).

No click here: ``python -m memories_async.testing``, which needs no extra, uses them too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ExitCode(enum.IntEnum):
    """How a command ended; each command's ``--help`` says what each code means for it."""

    OK = 0
    """Everything asked for was done: exported, printed, measured (failed requests are part
    of a benchmark's results); a fake server stopped by Ctrl-C or ``SIGTERM``."""
    FAILED = 1
    """Some videos failed (they are in the failures file); an account-wide error other
    than a rejected key stopped the command (out of credits, account disabled, permission
    denied); an output could not be written; the library listing failed; ``get``: the
    request failed; ``fake-server``: the address cannot be listened on."""
    USAGE = 2
    """Usage or configuration error: a bad option, no API key or a key the service
    rejects (code ``0401``), an unreadable ids file or a malformed line in it, an output
    that cannot be used (written by something else, locked by another export), a rate
    store (``--rate-store``) that is malformed or does not answer."""
    INTERRUPTED = 130
    """Interrupted by Ctrl-C (``SIGINT``), ``SIGTERM`` or ``SIGHUP``; what was exported is
    kept (rerun the same command to resume)."""


def exit_codes(meanings: Mapping[ExitCode, str], /) -> str:
    """The ``Exit codes: 0 ...; 1 ...`` text of a command's help, from what each means for it."""
    listed = "; ".join(f"{int(code)} {meanings[code]}" for code in sorted(meanings))
    return f"Exit codes: {listed}."


FAKE_SERVER_EXITS = {
    ExitCode.OK: "stopped by Ctrl-C or SIGTERM",
    ExitCode.FAILED: "cannot listen on the address",
    ExitCode.USAGE: "a bad option or value",
}
"""What each code means for the fake server (both its command lines)."""
