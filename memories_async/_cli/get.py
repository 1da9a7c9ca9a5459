"""``memories-async get``: one video's transcript on stdout."""

from __future__ import annotations

import contextlib

import attrs
import click
from rich.console import Console

from .._client import MemoriesClient
from .._errors import MemoriesError
from .._export import error_message
from .._formats import ExportFormat
from .._ids import IdInputError, check_id_arguments
from .._models import Transcript, TranscriptKind, VideoStatus
from .._redact import Redactor
from .._sinks import render
from .common import (
    DEMO_VIDEOS,
    ServiceOptions,
    Stop,
    check_rate_store,
    demo_server,
    echo_error,
    exit_code_for,
    require_stdout,
    run_interruptible,
    silence_stdout,
    verbose_logging,
)
from .exits import ExitCode, exit_codes
from .export import FORMATS
from .options import argument, command, flag, group, option


@attrs.frozen(kw_only=True)
class GetOptions:
    """The options of ``get``."""

    video_no: str | None = argument(required=False)
    kind: str = option(
        "--kind",
        type=click.Choice(["visual", "audio"]),
        default="visual",
        show_default=True,
        help="Visual transcription (scene captions) or audio (speech).",
    )
    format: str = option(
        "--format",
        metavar="FORMAT",
        type=click.Choice(FORMATS),
        default=ExportFormat.JSONL.value,
        show_default=True,
        help="How to print the transcript (csv includes its header).",
    )
    service: ServiceOptions = group(ServiceOptions)
    demo: bool = flag(
        "--demo", help="Read from a built-in fake service; without VIDEO_NO, its first ready video."
    )


EXIT_MEANINGS = {
    ExitCode.OK: "printed (possibly empty: no speech, not processed, other namespace)",
    ExitCode.FAILED: "the request failed",
    ExitCode.USAGE: "usage or configuration error (including a key the service rejects)",
    ExitCode.INTERRUPTED: "interrupted",
}


@command("get", GetOptions, epilog=exit_codes(EXIT_MEANINGS))
def get(ctx: click.Context, options: GetOptions) -> None:
    """Print one video's transcript on stdout."""
    if options.video_no is None and not options.demo:
        raise click.UsageError("missing VIDEO_NO (or pass --demo)")
    if options.demo and (options.service.account.base_url or options.service.account.api_key_file):
        raise click.UsageError("--demo runs its own fake service: drop --base-url/--api-key-file")
    fmt = ExportFormat(options.format)
    redact = Redactor()
    console = Console(stderr=True, highlight=False)
    output: list[bytes] = []

    async def main() -> None:
        transcript = await _fetch_one(options, redact)
        try:
            output.append(render(transcript, fmt, header=True))
        except (ValueError, TypeError) as exc:
            raise Stop(
                f"cannot render the transcript as {fmt.value}: {exc}", ExitCode.FAILED
            ) from None

    code = ExitCode.OK
    with verbose_logging(options.service.verbose, console, redact):
        try:
            if options.video_no is not None:
                check_id_arguments([options.video_no])
            require_stdout()  # before anything is fetched
            if run_interruptible(main) is not None:
                click.echo("interrupted", err=True)
                code = ExitCode.INTERRUPTED
            elif output:
                stdout = require_stdout()
                stdout.write(output[0])
                stdout.flush()
        except Stop as stop:
            echo_error(stop.message, redact)
            code = stop.code
        except (MemoriesError, IdInputError) as exc:
            echo_error(error_message(exc), redact)
            code = exit_code_for(exc)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                silence_stdout()
            echo_error(f"cannot write the output: {exc.strerror or exc}", redact)
            code = ExitCode.FAILED
    ctx.exit(code)


async def _fetch_one(options: GetOptions, redact: Redactor) -> Transcript:
    """Fetch one transcript for ``get``, from the service or from a demo fake."""
    async with contextlib.AsyncExitStack() as stack:
        number = options.video_no
        if options.demo:
            server = await stack.enter_async_context(demo_server(DEMO_VIDEOS))
            server.faults = ()
            config = options.service.config(demo=server)
            if number is None:
                number = server.library.videos(status=VideoStatus.PARSE.value)[0].video_no
        else:
            config = options.service.config()
        redact.add(config.api_key)
        client = await stack.enter_async_context(MemoriesClient(config=config))
        await check_rate_store(client)
        assert number is not None
        return await client.get_transcription(number, kind=TranscriptKind(options.kind))
