"""The command line's first-hour details: the fake server's default port, the environment
variables shown in ``--help`` (read by the config layer only, with option > environment >
default), the order of the commands, and shell completion."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from memories_async._cli.app import COMMANDS, cli
from memories_async._cli.common import Invocation, ServiceOptions
from memories_async._cli.fake_server import fake_server
from memories_async._cli.options import EnvOption, build, parameters
from memories_async._config import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_RATE_STORE,
    ENV_UNIQUE_ID,
)
from memories_async.testing import FakeServerOptions
from memories_async.testing._options import COMMAND_LINE_PORT, PROG, command_line

DOCS = Path(__file__).parent.parent / "docs"


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, args, obj=Invocation(tuple(args)))


# -- the fake server's port ------------------------------------------------------------


def test_both_fake_server_command_lines_default_to_one_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []

    def run(options: FakeServerOptions, /, *, on_ready: Callable[[Any], object]) -> None:
        seen.append(options.port)

    monkeypatch.setattr("memories_async.testing._command.run_fake_server", run)
    assert invoke(["fake-server"]).exit_code == 0
    assert command_line(PROG).parse_args([]).port == COMMAND_LINE_PORT
    assert seen == [COMMAND_LINE_PORT]
    # The Python API keeps a free port: tests in parallel never collide.
    assert FakeServerOptions().port == 0
    assert str(COMMAND_LINE_PORT) in (fake_server.help or "")


def test_the_default_port_is_none_the_docs_examples_bind() -> None:
    """Every port the documentation's examples use (a web app's, Redis') differs from the
    fake server's, which the docs mention only about the fake server."""
    bound: set[int] = set()
    for page in DOCS.rglob("*.md"):
        for paragraph in page.read_text().split("\n\n"):
            ports = {
                int(port)
                for match in re.findall(r"[\w.-]+:(\d{4,5})\b|--port[ =](\d{4,5})\b", paragraph)
                for port in match
                if port
            }
            if "fake" not in paragraph.lower():
                bound |= ports
    assert {8080, 6379} <= bound  # the web-app guide's application, Redis
    assert COMMAND_LINE_PORT not in bound


def test_the_web_app_guide_runs_the_fake_server_beside_its_app() -> None:
    guide = (DOCS / "how-to" / "web-app.md").read_text()
    assert "localhost:8080" in guide
    assert f"http://127.0.0.1:{COMMAND_LINE_PORT}" in guide


def test_port_0_announces_the_port_picked(capfd: pytest.CaptureFixture[str]) -> None:
    from memories_async.testing._command import announce
    from memories_async.testing._server import FakeServer, FakeServerThread

    with FakeServerThread(FakeServer(port=0)) as running:
        announce(running)
        url = running.url
    out = capfd.readouterr().out
    assert out == f"{url}\n"
    assert not url.endswith(":0")


# -- environment variables -------------------------------------------------------------

ENV_OPTIONS = {
    "--base-url": ENV_BASE_URL,
    "--unique-id": ENV_UNIQUE_ID,
    "--rate-store": ENV_RATE_STORE,
}


@pytest.mark.parametrize("command", ["export", "get"])
def test_help_shows_the_environment_variables(command: str) -> None:
    result = invoke([command, "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.stdout.split())
    for flag, variable in ENV_OPTIONS.items():
        assert re.search(rf"{flag} \S+ .*?\[env var: {variable}\]", help_text), flag


def test_bench_shows_the_account_variables() -> None:
    help_text = " ".join(invoke(["bench", "--help"]).stdout.split())
    assert f"[env var: {ENV_BASE_URL}]" in help_text
    assert f"[env var: {ENV_UNIQUE_ID}]" in help_text


def test_the_variables_are_the_config_layers() -> None:
    shown = {
        parameter.opts[0]: parameter.envvar
        for parameter in parameters(ServiceOptions)
        if isinstance(parameter, EnvOption)
    }
    assert shown == ENV_OPTIONS
    assert all(
        isinstance(parameter, click.Option) and parameter.show_envvar
        for parameter in parameters(ServiceOptions)
        if isinstance(parameter, EnvOption)
    )


def _config(args: list[str]) -> Any:
    """The client config ``export``'s options give, parsed by click as the command does."""
    command = click.Command("probe", params=parameters(ServiceOptions))
    with command.make_context("probe", args) as ctx:
        return build(ServiceOptions, ctx.params).config()


def test_click_does_not_read_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BASE_URL, "http://from-env.invalid")
    command = click.Command("probe", params=parameters(ServiceOptions))
    with command.make_context("probe", []) as ctx:
        assert ctx.params["base_url"] is None
        assert ctx.params["unique_id"] is None
        assert ctx.params["rate_store"] is None


@pytest.mark.parametrize(
    ("flag", "variable", "field", "option_value", "env_value", "default"),
    [
        (
            "--base-url",
            ENV_BASE_URL,
            "base_url",
            "http://option:1",
            "http://env:2",
            DEFAULT_BASE_URL,
        ),
        ("--unique-id", ENV_UNIQUE_ID, "unique_id", "from-option", "from-env", None),
        (
            "--rate-store",
            ENV_RATE_STORE,
            "rate_store",
            "memory://",
            "redis://env.invalid:6379/0",
            None,
        ),
    ],
)
def test_option_beats_environment_beats_default(
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    variable: str,
    field: str,
    option_value: str,
    env_value: str,
    default: str | None,
) -> None:
    monkeypatch.setenv(ENV_API_KEY, "sk-test-precedence")
    monkeypatch.delenv(variable, raising=False)
    assert getattr(_config([]), field) == default
    monkeypatch.setenv(variable, f" {env_value} ")
    assert getattr(_config([]), field) == env_value
    assert getattr(_config([flag, option_value]), field) == option_value
    # An empty variable counts as unset, as in the library.
    monkeypatch.setenv(variable, "")
    assert getattr(_config([]), field) == default


# -- commands: order and completion ----------------------------------------------------


def test_commands_are_listed_in_the_declared_order() -> None:
    assert list(COMMANDS) == ["export", "get", "bench", "fake-server"]
    with cli.make_context("memories-async", [], resilient_parsing=True) as ctx:
        assert cli.list_commands(ctx) == list(COMMANDS)
    listed = invoke(["--help"]).stdout.partition("Commands:")[2].split()
    assert [word for word in listed if word in COMMANDS] == list(COMMANDS)


def test_shell_completion_lists_the_commands_in_order() -> None:
    result = CliRunner(
        env={
            "_MEMORIES_ASYNC_COMPLETE": "bash_complete",
            "COMP_WORDS": "memories-async ",
            "COMP_CWORD": "1",
        }
    ).invoke(cli, [], prog_name="memories-async")
    assert result.exit_code == 0
    assert [line.split(",")[1] for line in result.stdout.splitlines()] == list(COMMANDS)


def test_shell_completion_script_and_docs() -> None:
    result = CliRunner(env={"_MEMORIES_ASYNC_COMPLETE": "bash_source"}).invoke(
        cli, [], prog_name="memories-async"
    )
    assert result.exit_code == 0
    assert "_memories_async_completion" in result.stdout
    reference = (DOCS / "reference" / "cli.md").read_text()
    for shell in ("bash", "zsh", "fish"):
        assert f"_MEMORIES_ASYNC_COMPLETE={shell}_source memories-async" in reference
