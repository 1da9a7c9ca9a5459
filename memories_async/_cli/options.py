"""Options declared once: the fields of a frozen attrs class drive the click parameters.

A command's options are one class::

    @attrs.frozen(kw_only=True)
    class GetOptions:
        video_no: str | None = argument(required=False)
        kind: str = option("--kind", type=click.Choice(["visual", "audio"]), default="visual")
        service: ServiceOptions = group(ServiceOptions)

:func:`parameters` makes one click parameter per field, named after the field (so the
parsed value lands on it), in the order of the fields, a :func:`group` field's own
fields at its place; :func:`command` builds the click command whose callback receives the
context and one instance of the class. The field's default is the option's default.

An option that the environment can set names its variable (``option(..., env=ENV_BASE_URL)``):
``--help`` and the documentation show it (click's ``show_envvar``), but click does not read
it. The environment is read in one place, :meth:`~memories_async.Config.from_env`, which
the commands hand the options given: so an option wins over its variable, the variable
over the default, and the command line and the library agree on what a variable means
(a blank one counts as unset, a value is stripped) without a second reading of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
import click

_PARAMETER: Final = "memories_async.cli.parameter"
_GROUP: Final = "memories_async.cli.group"

CONTEXT: Final = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
"""The click context settings of every command."""

T = TypeVar("T")


class EnvOption(click.Option):
    """An option whose environment variable :meth:`Config.from_env` reads, not click: it is
    shown (``[env var: NAME]`` in ``--help``, an ``envvar`` entry in the documentation)
    and never resolved here, so an unset option reaches the config layer as ``None``."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        """``None``: the variable is read by the config layer, after the options."""
        return None


@attrs.frozen
class _Declaration:
    kind: type[click.Parameter]
    declarations: tuple[str, ...]
    settings: Mapping[str, Any]


def option(*declarations: str, default: Any = None, env: str | None = None, **settings: Any) -> Any:
    """A field that is a :class:`click.Option` (``--flag`` spellings and click settings).

    ``env`` names the environment variable the config layer reads for this setting when
    the option is not given; the help shows it (see :class:`EnvOption`).
    """
    kind: type[click.Option] = click.Option
    if env is not None:
        kind = EnvOption
        settings = {**settings, "envvar": env, "show_envvar": True}
    declaration = _Declaration(kind, declarations, {"default": default, **settings})
    return attrs.field(default=default, metadata={_PARAMETER: declaration})


def flag(*declarations: str, help: str) -> Any:
    """An on/off option, off by default."""
    return option(*declarations, default=False, is_flag=True, help=help)


def argument(*, default: Any = None, **settings: Any) -> Any:
    """A field that is a :class:`click.Argument`."""
    declaration = _Declaration(click.Argument, (), settings)
    return attrs.field(default=default, metadata={_PARAMETER: declaration})


def group(cls: type[T]) -> Any:
    """A field holding another options class, whose options appear at the field's place."""
    return attrs.field(factory=cls, metadata={_GROUP: cls})


def parameters(cls: type[Any], /) -> list[click.Parameter]:
    """The click parameters of an options class, one per field, in the order of the fields."""
    made: list[click.Parameter] = []
    for field in attrs.fields(cls):
        if _GROUP in field.metadata:
            made += parameters(field.metadata[_GROUP])
            continue
        declaration: _Declaration = field.metadata[_PARAMETER]
        made.append(
            declaration.kind([*declaration.declarations, field.name], **declaration.settings)
        )
    return made


def names(cls: type[Any], /) -> tuple[str, ...]:
    """The parameter names of an options class (its fields, groups flattened)."""
    return tuple(parameter.name for parameter in parameters(cls) if parameter.name)


def build(cls: type[T], values: Mapping[str, Any], /) -> T:
    """The options class filled from click's parsed ``values`` (by field name)."""
    fields: dict[str, Any] = {}
    options: Any = cls
    for field in attrs.fields(options):
        if _GROUP in field.metadata:
            fields[field.name] = build(field.metadata[_GROUP], values)
        else:
            fields[field.name] = values[field.name]
    return cls(**fields)


def command(
    name: str, cls: type[T], /, **settings: Any
) -> Callable[[Callable[[click.Context, T], None]], click.Command]:
    """Make a click command of ``name`` whose options are ``cls``'s fields.

    The decorated function receives the click context and the options, one ``cls``; its
    docstring is the command's help.
    """

    def decorate(function: Callable[[click.Context, T], None]) -> click.Command:
        @functools.wraps(function)
        def callback(**values: Any) -> None:
            function(click.get_current_context(), build(cls, values))

        return click.Command(
            name,
            callback=callback,
            params=parameters(cls),
            help=function.__doc__,
            context_settings={**CONTEXT, **settings.pop("context_settings", {})},
            **settings,
        )

    return decorate
