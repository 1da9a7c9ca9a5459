"""The ``memories-async`` group, with every command, and :func:`main`."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

import click

from .common import Invocation
from .options import CONTEXT

COMMANDS: Final = {
    "export": "export",
    "get": "get",
    "bench": "bench",
    "fake-server": "fake_server",
}
"""Each command's name, and the module of this package that defines it under that name, in
the order ``--help``, the documentation and shell completion list them: the command most
users come for first."""


class _Commands(click.Group):
    """A group that imports a command's module only when the command is asked for: an
    ``export`` does not load the bench, nor the fake server the bench describes."""

    def __init__(self, *args: Any, modules: Mapping[str, str], **settings: Any) -> None:
        super().__init__(*args, **settings)
        self._modules = dict(modules)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order declared (not click's alphabetical order)."""
        return [
            *self._modules,
            *(name for name in super().list_commands(ctx) if name not in self._modules),
        ]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self._modules.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        command: click.Command = vars(importlib.import_module(f"{__package__}.{module}"))[module]
        return command


@click.group(cls=_Commands, modules=COMMANDS, context_settings=CONTEXT)
@click.version_option(package_name="memories-async", prog_name="memories-async")
def cli() -> None:
    """Fetch and export memories.ai transcripts, concurrently and reliably.

    The API key comes from $MEMORIES_API_KEY (or --api-key-file). Try it without a key
    against a built-in fake service:

    \b
        memories-async export --demo 200 --format srt --out transcripts/

    Run 'memories-async COMMAND --help' for each command's options.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    # The command owns its process: long transcripts allocate hundreds of
    # small objects per answer, and the default young-generation threshold
    # (700) made the collector a quarter of the CPU of a bulk export.
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, old)
    args = list(sys.argv[1:] if argv is None else argv)
    cli.main(args=args, prog_name="memories-async", obj=Invocation(tuple(args)))
