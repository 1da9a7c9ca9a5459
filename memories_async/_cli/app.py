"""The ``memories-async`` group, with every command, and :func:`main`."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

import click

from .bench import bench
from .common import Invocation
from .export import export
from .fake_server import fake_server
from .get import get
from .options import CONTEXT


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="memories-async", prog_name="memories-async")
def cli() -> None:
    """Fetch and export memories.ai transcripts, concurrently and reliably.

    The API key comes from $MEMORIES_API_KEY (or --api-key-file). Try it without a key
    against a built-in fake service:

    \b
        memories-async export --demo 200 --format srt --out transcripts/

    Run 'memories-async COMMAND --help' for each command's options.
    """


for _command in (export, get, fake_server, bench):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    # The command owns its process: long transcripts allocate hundreds of
    # small objects per answer, and the default young-generation threshold
    # (700) made the collector a quarter of the CPU of a bulk export.
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, old)
    args = list(sys.argv[1:] if argv is None else argv)
    cli.main(args=args, prog_name="memories-async", obj=Invocation(tuple(args)))
