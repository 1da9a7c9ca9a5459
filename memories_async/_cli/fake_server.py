"""``memories-async fake-server``: the fake server's own command line, under this command.

The options are not declared here: they are :class:`~memories_async.testing.FakeServerOptions`'
fields, and the arguments go, untouched, to the parser ``python -m memories_async.testing``
uses (argparse, which needs no extra), so both spell and check every option alike.
"""

from __future__ import annotations

import click

from .exits import FAKE_SERVER_EXITS, exit_codes
from .options import CONTEXT

PROG = "memories-async fake-server"


@click.command(
    "fake-server",
    epilog=exit_codes(FAKE_SERVER_EXITS),
    context_settings={
        **CONTEXT,
        "help_option_names": [],
        "ignore_unknown_options": True,
        "allow_extra_args": True,
    },
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED, metavar="[OPTIONS]")
@click.pass_context
def fake_server(ctx: click.Context, /, arguments: tuple[str, ...]) -> None:
    """Serve a fake memories.ai API until Ctrl-C, for trying the client and for tests.

    Prints the base URL on stdout once listening, and the accepted key on stderr. Point
    the client at it with MEMORIES_BASE_URL and MEMORIES_API_KEY, or --base-url.

    \b
    The options are those of 'python -m memories_async.testing' (one parser serves
    both), listed by 'memories-async fake-server --help'; --port is 8321 by default.
    """
    from ..testing._command import main

    ctx.exit(main(arguments, prog=PROG))
