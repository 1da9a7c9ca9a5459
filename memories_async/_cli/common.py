"""What the commands share: service options, the API key and client settings, redaction and
errors, exit codes, interrupts and standard output.

The environment is read in one place, :meth:`Config.from_env`: :func:`client_config` hands
it the options given (and the key of ``--api-key-file``), and says what to do when no key
is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import IO, TYPE_CHECKING, Any

import attrs
import click
from rich.console import Console

from .._config import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_RATE_STORE,
    ENV_UNIQUE_ID,
    MAX_API_KEY_LENGTH,
    Config,
    RetryPolicy,
)
from .._errors import (
    AccountHaltedError,
    AuthenticationError,
    ConfigError,
    RateStoreError,
)
from .._ids import IdInputError
from .._ratestore import open_rate_store
from .._redact import Redactor
from .._sinks import OutputError
from .exits import ExitCode
from .options import group, option
from .progress import ConsoleLogHandler

if TYPE_CHECKING:
    from .._client import MemoriesClient
    from ..testing import FakeServer

DEMO_VIDEOS = 200
"""Videos in the fake library of ``--demo`` when no number is given."""
DEMO_SEED = 2025
DEMO_PROCESSING = 5.0
"""Seconds over which the videos of ``export --demo --wait`` still processing finish (and
for which each video uploaded under ``--demo --follow`` is processed)."""
DEMO_ARRIVALS = 2.0
"""Seconds between two uploads of new videos to the fake service of ``--demo --follow``."""


@attrs.frozen
class Invocation:
    """How the program was called, for the "resume with the same command" hint."""

    argv: tuple[str, ...]


class Stop(click.ClickException):
    """Ends a command with a one-line ``error: ...`` message and an exit code.

    ``export`` and ``get`` catch it to redact the message and report; elsewhere click
    shows it and exits with :attr:`code`.
    """

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code
        vars(self)["exit_code"] = int(code)  # click reads it; a class attribute there

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the ``error:`` line on stderr."""
        click.echo(f"error: {self.message}", err=True, file=file)


@attrs.frozen(kw_only=True)
class AccountOptions:
    """Which service and account: shared by ``export``, ``get`` and ``bench --ids``."""

    base_url: str | None = option(
        "--base-url",
        metavar="URL",
        env=ENV_BASE_URL,
        help=f"Service address (default: {DEFAULT_BASE_URL}).",
    )
    api_key_file: str | None = option(
        "--api-key-file",
        metavar="FILE",
        help=f"Read the API key from the first line of FILE instead of ${ENV_API_KEY}."
        " The key is never printed, logged or written.",
    )
    unique_id: str | None = option(
        "--unique-id",
        metavar="NAME",
        env=ENV_UNIQUE_ID,
        help="Namespace the videos were uploaded under (default: the service's 'default')."
        " A wrong one gives empty transcripts, not errors.",
    )


@attrs.frozen(kw_only=True)
class ServiceOptions:
    """The options that say how to reach the service and how to call it, shared by
    ``export`` and ``get``."""

    account: AccountOptions = group(AccountOptions)
    timeout: float | None = option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Longest wait for one attempt of one request (default: 60).",
    )
    attempts: int = option(
        "--attempts",
        type=click.IntRange(min=1),
        metavar="N",
        default=RetryPolicy().attempts,
        show_default=True,
        help="Attempts at most of a request that fails in a way that may pass (5xx,"
        " timeouts, resets, 'network abnormal'), the first included: RetryPolicy(attempts=N)"
        " of the library. Rate-limit answers are waited out, not counted.",
    )
    retries: int | None = option(
        "--retries",
        type=click.IntRange(min=0),
        metavar="N",
        hidden=True,
        help="Deprecated: --attempts N+1.",
    )
    rate_store: str | None = option(
        "--rate-store",
        metavar="URL",
        env=ENV_RATE_STORE,
        help="Where the pacing state lives: memory:// (default: this process only) or"
        " redis://[:PASSWORD@]HOST:PORT/DB, shared by every process and machine using it,"
        " so that they stay under one account quota together.",
    )
    rate_name: str | None = option(
        "--rate-name",
        metavar="NAME",
        help="The name of the quota in the rate store, for processes that use different"
        " keys of one account (default: a salted hash of the base URL and key).",
    )
    verbose: int = option(
        "-v",
        "--verbose",
        count=True,
        default=0,
        help="Log what the client does on stderr: -v for retries, -vv for every request.",
    )

    def attempts_asked(self) -> int:
        """``--attempts``, or the deprecated ``--retries N`` as ``N + 1`` (said on stderr)."""
        if self.retries is None:
            return self.attempts
        if self.attempts != RetryPolicy().attempts:
            raise Stop("give --attempts only (--retries N is --attempts N+1)", ExitCode.USAGE)
        click.echo(
            f"memories-async: --retries is deprecated: use --attempts {self.retries + 1}"
            " (the first attempt included)",
            err=True,
        )
        return self.retries + 1

    def config(self, *, rate: float | None = None, demo: FakeServer | None = None) -> Config:
        """The client settings: from the options, the environment and ``--api-key-file``.

        For a demo, the fake ``demo`` server's address and key, and no environment.
        """
        settings: dict[str, Any] = {
            "unique_id": self.account.unique_id,
            "timeout": self.timeout,
            "retry": retry_policy(self.attempts_asked()),
            "rate": rate,
            "rate_store": self.rate_store,
            "rate_name": self.rate_name,
        }
        if demo is not None:
            try:
                return Config(
                    api_key=demo.api_key,
                    base_url=demo.url,
                    **{k: v for k, v in settings.items() if v is not None},
                )
            except ConfigError as exc:
                raise Stop(str(exc), ExitCode.USAGE) from None
        return client_config(
            api_key_file=self.account.api_key_file,
            base_url=self.account.base_url,
            missing_key=f"set {ENV_API_KEY} or pass --api-key-file FILE (or try --demo)",
            **settings,
        )


def retry_policy(attempts: int) -> RetryPolicy:
    """The retry policy for ``--attempts N``: N attempts at most, the first included."""
    # No deadline: a rate-limited request waits for its slot however long the
    # quota makes it; the user can interrupt and resume.
    return RetryPolicy(
        attempts=attempts,
        transient_attempts=min(RetryPolicy().transient_attempts, attempts),
        total_timeout=None,
    )


def read_key_file(path: str) -> str:
    """The API key on the first line of ``path`` (stripped); :class:`Stop` (exit 2) if none."""
    try:
        with open(path, encoding="utf-8") as file:
            # Never the whole of a big file: a key is one short line.
            key = file.readline(MAX_API_KEY_LENGTH + 2).strip()
    except OSError as exc:
        raise Stop(f"cannot read --api-key-file {path}: {exc.strerror}", ExitCode.USAGE) from None
    except UnicodeDecodeError:
        raise Stop(f"--api-key-file {path} is not UTF-8 text", ExitCode.USAGE) from None
    if len(key) > MAX_API_KEY_LENGTH:
        raise Stop(
            f"--api-key-file {path} does not start with an API key (its"
            f" first line is longer than {MAX_API_KEY_LENGTH:,} characters)",
            ExitCode.USAGE,
        )
    if not key:
        raise Stop(
            f"--api-key-file {path} is empty: its first line must hold the key", ExitCode.USAGE
        )
    return key


def client_config(*, api_key_file: str | None, missing_key: str, **settings: Any) -> Config:
    """:meth:`Config.from_env` with ``settings`` and the key of ``api_key_file``, if given.

    Stops (exit 2) with one line on a bad setting; without a key anywhere, the line is
    ``no API key: <missing_key>``. The key never appears in the message.
    """
    key = None if api_key_file is None else read_key_file(api_key_file)
    try:
        return Config.from_env(api_key=key, **settings)
    except ConfigError as exc:
        message = str(exc)
        if key is None and message.startswith("no API key"):
            message = f"no API key: {missing_key}"
        raise Stop(
            message if key is None else message.replace(key, "***"), ExitCode.USAGE
        ) from None


def demo_server(
    videos: int, *, processing: float | None = None, arrivals: float | None = None
) -> FakeServer:
    """The fake service of ``--demo``: a generated library, some latency and a few faults.

    With ``processing``, its videos still processing finish one after another over that
    many seconds; with ``arrivals``, a new video is uploaded every that many seconds
    (processed for ``processing`` seconds).
    """
    from ..testing import FakeLibrary, FakeServer, FaultRule, Latency
    from ..testing._server import finish_processing

    server = FakeServer(
        FakeLibrary.generate(videos, seed=DEMO_SEED),
        latency=Latency.uniform(0.02, 0.2),
        faults=[FaultRule.random(0.04)],
        seed=DEMO_SEED,
    )
    if processing is not None:
        finish_processing(server, over=processing)
    if arrivals is not None:
        server.upload_every(arrivals, processing=processing)
    return server


@contextlib.contextmanager
def verbose_logging(verbosity: int, console: Console, redact: Redactor) -> Iterator[None]:
    """Send the ``memories_async`` logger to the console while the command runs."""
    if verbosity <= 0:
        yield
        return
    logger = logging.getLogger("memories_async")
    handler = ConsoleLogHandler(console, redact)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def echo_error(message: str, redact: Redactor) -> None:
    """Print one redacted ``error: ...`` line on stderr."""
    click.echo(f"error: {redact(message)}", err=True)


def exit_code_for(error: BaseException) -> ExitCode:
    """Exit code of an error that stopped a command."""
    cause = error.cause if isinstance(error, AccountHaltedError) else error
    if isinstance(cause, AuthenticationError) or isinstance(
        error, IdInputError | OutputError | ConfigError
    ):
        return ExitCode.USAGE
    return ExitCode.FAILED


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals that stop a command cleanly: Ctrl-C, a kill, and a terminal that hangs up."""


def run_interruptible(factory: Callable[[], Coroutine[Any, Any, None]]) -> int | None:
    """Run ``factory()`` in a new event loop; return the signal that interrupted it, if any.

    The first SIGINT, SIGTERM or SIGHUP cancels the coroutine, which cleans up (in-flight requests
    are dropped, everything committed stays); the handlers are then removed, so a second
    signal ends the process at once (which is safe: every write is crash-safe).
    """
    caught: list[int] = []

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[int] = []

        def on_signal(signum: int) -> None:
            if caught:  # pragma: no cover - handlers are removed at the first signal
                return
            caught.append(signum)
            for installed_signal in installed:
                loop.remove_signal_handler(installed_signal)
            installed.clear()
            task.cancel()

        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, on_signal, signum)
                    installed.append(signum)
        try:
            await factory()
        except asyncio.CancelledError:
            if not caught:
                raise
            task.uncancel()
        finally:
            for installed_signal in installed:
                loop.remove_signal_handler(installed_signal)

    try:
        asyncio.run(runner())
    except KeyboardInterrupt:
        caught.append(signal.SIGINT)
    return caught[0] if caught else None


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def binary_stdout() -> IO[bytes] | None:
    """The byte stream under stdout, where the data goes; ``None`` when stdout is closed."""
    return None if sys.stdout is None else sys.stdout.buffer


def require_stdout() -> IO[bytes]:
    """:func:`binary_stdout`, or stop (exit 2) when stdout is closed."""
    stdout = binary_stdout()
    if stdout is None:
        raise Stop("standard output is closed: nothing to print to", ExitCode.USAGE)
    return stdout


async def check_rate_store(client: MemoriesClient) -> None:
    """Stop with exit 2 and one line when the shared rate store does not answer."""
    try:
        await client.governor.check()
    except RateStoreError as exc:
        raise Stop(f"{exc} (check --rate-store / ${ENV_RATE_STORE})", ExitCode.USAGE) from None


async def check_rate_store_url(url: str | None) -> None:
    """:func:`check_rate_store` for a store URL, before any client exists."""
    store = open_rate_store(url)
    if store is None:
        return
    try:
        await store.check()
    except RateStoreError as exc:
        raise Stop(f"{exc} (check --rate-store / ${ENV_RATE_STORE})", ExitCode.USAGE) from None
    finally:
        await store.aclose()
