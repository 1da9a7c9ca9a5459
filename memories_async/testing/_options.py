"""The fake server's options, declared once: the Python API and both command lines.

:class:`FakeServerOptions` is a frozen attrs class. Each field carries its command-line
flag, help and bounds, from which :func:`command_line` builds the argparse parser of
``python -m memories_async.testing``; ``memories-async fake-server`` hands its arguments to
that same parser, so the option list exists here only. argparse rather than click: the
testing package needs no extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from memories_async.testing._library import FakeLibrary
from memories_async.testing._settings import (
    DEFAULT_RANDOM_FAULTS,
    FaultKind,
    FaultRule,
    Latency,
    RateLimits,
    TranscriptShape,
    WireFormat,
)

LatencyDistribution = Literal["fixed", "uniform", "lognormal"]
LATENCY_DISTRIBUTIONS: Final = ("fixed", "uniform", "lognormal")

_SPEC: Final = "memories_async.testing.option"


@attrs.frozen
class _Spec:
    """How one field of :class:`FakeServerOptions` is spelled on the command line."""

    help: str
    metavar: str | None = None
    flag: str | None = None
    """``--name`` from the field name unless given; no flag for a Python-only field."""
    parse: Callable[[str], Any] | None = None
    """How a value is read from its text; ``None`` for an on/off flag."""
    choices: tuple[str, ...] | None = None
    repeat: bool = False
    """Repeatable (``--api-key A --api-key B``) rather than one value."""
    default_text: str | None = None
    command_line: bool = True


def _bounded(
    kind: Callable[[str], float],
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
) -> tuple[Callable[[str], Any], Callable[[object, attrs.Attribute[Any], Any], None]]:
    """A parser of a number within bounds, and the attrs validator of the same bounds."""

    def check(name: str, value: float | None) -> None:
        if value is None:
            return
        if (
            (low is not None and not value >= low)
            or (high is not None and not value <= high)
            or (above is not None and not value > above)
        ):
            if above is not None:
                bounds = f"> {above:g}"
            elif high is None:
                bounds = f">= {low:g}"
            elif (low, high) == (0, 1):
                bounds = "a probability, between 0 and 1"
            else:
                bounds = f"between {low:g} and {high:g}"
            msg = f"{name!r} must be {bounds}, got {value}"
            raise ValueError(msg)

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        try:
            check("value", value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace("'value' ", "")) from None
        return value

    def validate(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(attribute.name, value)

    return parse, validate


def _option(default: Any, spec: _Spec, validator: Any = None, converter: Any = None) -> Any:
    return attrs.field(
        default=default, validator=validator, converter=converter, metadata={_SPEC: spec}
    )


def _number(
    default: Any,
    kind: Callable[[str], float],
    *,
    help: str,
    metavar: str,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    default_text: str | None = None,
) -> Any:
    parse, validate = _bounded(kind, low=low, high=high, above=above)
    spec = _Spec(help, metavar, parse=parse, default_text=default_text)
    return _option(default, spec, validator=validate)


def _words(value: Iterable[str] | str) -> tuple[str, ...]:
    """``"a, b,"`` or ``["a", "b"]`` as ``("a", "b")``."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part.strip())


def _fault_kinds(value: Iterable[FaultKind | str] | str | None) -> tuple[FaultKind, ...] | None:
    if value is None:
        return None
    return tuple(FaultKind(kind) for kind in _words(value))


def _flag(help: str) -> Any:
    return _option(False, _Spec(help))


@attrs.frozen(kw_only=True)
class FakeServerOptions:
    """Plain settings of a fake server: its library, keys, rate limits, latency and faults.

    Build one with keywords (``FakeServerOptions(videos=10, qps=5)``) and pass it to
    :func:`build_fake_server` or :func:`run_fake_server`; the command line
    ``python -m memories_async.testing`` (and ``memories-async fake-server``) reads the same
    fields, one flag each: the field name with dashes (``--public-videos``), except
    ``--api-key`` (repeatable) for ``api_keys``. Comma-separated lists (``unique_ids``,
    ``fault_kinds``) are accepted as strings too. Raises :class:`ValueError` on a bad value.

    ``videos``/``public_videos``/``unique_ids``/``seed`` generate the library
    (:meth:`FakeLibrary.generate`). ``qps`` limits every endpoint (``None``: unlimited)
    with a lenient limiter (bursts of ``qps``), or with ``strict`` is the account's
    transcription quota (default 5) as in :meth:`RateLimits.strict`: one bucket shared by
    every transcription endpoint, the documented ``list_videos`` and ``get_metadata``
    limits, no burst. ``burst`` sets every bucket's size (default ``max(1, qps)``, or 1
    with ``strict``). ``neighbour_qps`` needs ``strict``: a noisy neighbour consuming that
    much of the transcription quota. ``http_429`` and ``retry_after`` shape the ``0429``
    answers. ``latency`` is the mean delay in seconds, exact for ``"fixed"``, spread over
    ``[0, 2 * latency]`` for ``"uniform"``, long-tailed for ``"lognormal"``. ``fault_rate``
    is the probability that a request is faulted, with a kind drawn from ``fault_kinds``
    (default: every kind but hangs and rate limiting). ``processing`` makes the generated
    videos still processing finish one after another over that many seconds, and
    ``arrivals`` uploads a new video every that many seconds (processed for
    ``processing`` seconds, if given), both on the server's clock (see
    :meth:`FakeService.processing`). ``record_timeline`` (Python only)
    records the rate limiter's decisions in :attr:`FakeStats.timeline`.
    """

    host: str = _option("127.0.0.1", _Spec("address to listen on", "ADDRESS", parse=str))
    port: int = _number(
        0, int, low=0, high=65535, metavar="PORT", help="port to listen on; 0 picks a free one"
    )
    videos: int = _number(
        1000, int, low=0, high=1_000_000, metavar="N", help="private videos to generate"
    )
    public_videos: int = _number(
        10, int, low=0, high=1_000_000, metavar="N", help="public-library (PI-) videos"
    )
    unique_ids: tuple[str, ...] = _option(
        ("default",),
        _Spec("namespaces the private videos are spread over", "NAME[,NAME...]", parse=_words),
        converter=_words,
    )
    seed: int = _number(0, int, metavar="N", help="seed of the library and of random draws")
    api_keys: tuple[str, ...] = _option(
        (),
        _Spec(
            "a key the fake accepts; repeatable",
            "KEY",
            flag="--api-key",
            parse=str,
            repeat=True,
            default_text="sk-test-fake-key",
        ),
        converter=tuple,
    )
    qps: float | None = _number(
        None,
        float,
        above=0,
        metavar="QPS",
        help="rate limit of every endpoint, answered with code 0429, or with --strict the"
        " account's transcription quota",
        default_text="none; 5 with --strict",
    )
    strict: bool = _flag(
        "strict account-wide limits: one bucket for every transcription endpoint (--qps),"
        " list_videos 5 and get_metadata 1 QPS, no burst"
    )
    burst: float | None = _number(
        None,
        float,
        low=1,
        metavar="N",
        help="tokens per bucket",
        default_text="the qps, or 1 with --strict",
    )
    neighbour_qps: float | None = _number(
        None,
        float,
        above=0,
        metavar="QPS",
        help="with --strict, another client of the account consuming QPS of the"
        " transcription quota",
    )
    http_429: bool = _flag("rate limit with HTTP 429 instead of HTTP 200 and code 0429")
    retry_after: bool = _flag("send Retry-After on rate-limit answers")
    latency: float = _number(
        0.0, float, low=0, metavar="SECONDS", help="mean delay before each answer"
    )
    latency_distribution: LatencyDistribution = _option(
        "fixed",
        _Spec("shape of the delay", parse=str, choices=LATENCY_DISTRIBUTIONS),
        validator=attrs.validators.in_(LATENCY_DISTRIBUTIONS),
    )
    fault_rate: float = _number(
        0.0,
        float,
        low=0,
        high=1,
        metavar="P",
        help="probability that a request gets an injected fault (5xx, reset, bad JSON...)",
    )
    fault_kinds: tuple[FaultKind, ...] | None = _option(
        None,
        _Spec(
            "faults to draw from: " + ", ".join(kind.value for kind in FaultKind),
            "KIND[,KIND...]",
            parse=_words,
            default_text="all but hang and rate_limited",
        ),
        converter=_fault_kinds,
    )
    hang_seconds: float = _number(
        3600.0, float, low=0, metavar="SECONDS", help="how long a 'hang' fault waits"
    )
    transcript_shape: TranscriptShape = _option(
        TranscriptShape.LIVE,
        _Spec(
            "transcript fields as the live service sends them, or as the v1.2 docs describe",
            parse=str,
            choices=tuple(shape.value for shape in TranscriptShape),
        ),
        converter=TranscriptShape,
    )
    extra_fields: bool = _flag("add unknown fields a client must ignore")
    processing: float | None = _number(
        None,
        float,
        low=0,
        metavar="SECONDS",
        help="the generated videos still processing (UNPARSE) finish one after another over"
        " SECONDS, and each uploaded video (--arrivals) is processed for SECONDS",
        default_text="never; uploads are ready at once",
    )
    arrivals: float | None = _number(
        None,
        float,
        above=0,
        metavar="SECONDS",
        help="a new video is uploaded every SECONDS (listed first, numbers VI9...)",
        default_text="none",
    )
    record_timeline: bool = _option(
        False, _Spec("record the rate limiter's decisions", command_line=False)
    )

    def __attrs_post_init__(self) -> None:
        self.rate_limits()  # the limits' own checks (a neighbour needs strict...) at once

    def library(self) -> FakeLibrary:
        """The generated library."""
        return FakeLibrary.generate(
            self.videos, seed=self.seed, unique_ids=self.unique_ids, public=self.public_videos
        )

    def rate_limits(self) -> RateLimits:
        """The rate limits asked for (:meth:`RateLimits.from_options`)."""
        return RateLimits.from_options(
            qps=self.qps,
            strict=self.strict,
            burst=self.burst,
            http_429=self.http_429,
            retry_after=self.retry_after,
            neighbour_qps=self.neighbour_qps,
        )

    def delay(self) -> Latency:
        """The latency asked for."""
        if self.latency <= 0:
            return Latency.none()
        if self.latency_distribution == "uniform":
            return Latency.uniform(0.0, 2 * self.latency)
        if self.latency_distribution == "lognormal":
            return Latency.lognormal(self.latency)
        return Latency.fixed(self.latency)

    def faults(self) -> tuple[FaultRule, ...]:
        """The random fault rule asked for, if any."""
        if self.fault_rate <= 0:
            return ()
        kinds = DEFAULT_RANDOM_FAULTS if self.fault_kinds is None else self.fault_kinds
        return (FaultRule.random(self.fault_rate, kinds),)

    def wire_format(self) -> WireFormat:
        """The wire format asked for."""
        return WireFormat(self.transcript_shape, extra_fields=self.extra_fields)

    def to_argv(self) -> list[str]:
        """The command-line arguments that give these options (those not at the command
        line's default: ``--port 0`` for the Python default, a free port)."""
        argv: list[str] = []
        for field in attrs.fields(FakeServerOptions):
            spec: _Spec = field.metadata[_SPEC]
            value = getattr(self, field.name)
            if value == _COMMAND_LINE_DEFAULTS.get(field.name, field.default):
                continue
            if not spec.command_line:
                msg = f"{field.name!r} has no command-line option"
                raise ValueError(msg)
            flag = _flag_of(field)
            if spec.parse is None:
                argv.append(flag)
            elif spec.repeat:
                for item in value:
                    argv += [flag, str(item)]
            elif isinstance(value, tuple):
                argv += [flag, ",".join(str(item) for item in value)]
            else:
                argv += [flag, str(value)]
        return argv


def option_spec(name: str, /) -> tuple[str, _Spec]:
    """The flag and the spelling (help, metavar, parser) of the field ``name``: for a
    command that offers some of the fake server's options as its own (``bench``)."""
    field = attrs.fields_dict(FakeServerOptions)[name]
    return _flag_of(field), field.metadata[_SPEC]


def _flag_of(field: attrs.Attribute[Any]) -> str:
    spec: _Spec = field.metadata[_SPEC]
    return spec.flag or "--" + field.name.replace("_", "-")


def _default_text(spec: _Spec, default: Any) -> str:
    if spec.default_text is not None:
        return spec.default_text
    if default is None:
        return "none"
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


PROG: Final = "python -m memories_async.testing"

COMMAND_LINE_PORT: Final = 8321
"""The port both command lines (``python -m memories_async.testing`` and ``memories-async
fake-server``) listen on by default: fixed, so a guide can give the URL, and clear of the
ports the documentation's own examples bind (8080 for a web app, 6379 for Redis). The
Python API's default stays 0 (a free port), so tests never collide."""
_COMMAND_LINE_DEFAULTS: Final[Mapping[str, Any]] = {"port": COMMAND_LINE_PORT}
"""The fields whose command-line default is not the Python one."""


def command_line(
    prog: str = PROG, *, defaults: Mapping[str, Any] | None = None
) -> argparse.ArgumentParser:
    """The fake server's command-line parser: one option per :class:`FakeServerOptions` field.

    ``--port`` defaults to :data:`COMMAND_LINE_PORT`; ``defaults`` overrides some fields'
    defaults for this program.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a fake memories.ai API until Ctrl-C or SIGTERM, for trying the"
        " client and for tests. The first line printed on stdout is the base URL; the"
        " accepted key follows on stderr.",
    )
    changed = {**_COMMAND_LINE_DEFAULTS, **(defaults or {})}
    for field in attrs.fields(FakeServerOptions):
        spec: _Spec = field.metadata[_SPEC]
        if not spec.command_line:
            continue
        default = changed.get(field.name, field.default)
        flag = _flag_of(field)
        if spec.parse is None:
            parser.add_argument(flag, dest=field.name, action="store_true", help=spec.help)
            continue
        help_text = f"{spec.help} (default: {_default_text(spec, default)})"
        if spec.repeat:
            parser.add_argument(
                flag,
                dest=field.name,
                action="append",
                type=spec.parse,
                default=[],
                metavar=spec.metavar,
                help=help_text,
            )
            continue
        parser.add_argument(
            flag,
            dest=field.name,
            type=spec.parse,
            default=default,
            choices=spec.choices,
            metavar=spec.metavar,
            help=help_text,
        )
    return parser


def options_from(arguments: argparse.Namespace, /) -> FakeServerOptions:
    """The options that :func:`command_line`'s parser read; raises :class:`ValueError`."""
    return FakeServerOptions(**vars(arguments))
