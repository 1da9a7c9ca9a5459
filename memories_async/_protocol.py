"""The memories.ai protocol without I/O: build requests, read answers, map codes to errors.

Everything here is a plain synchronous function over bytes and dicts, so it is
tested without a network and reused by any transport. The aiohttp layer
(:mod:`memories_async._transport`) only moves the bytes.
"""

from __future__ import annotations

import email.utils
import functools
import math
import sys
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
import orjson

from ._errors import (
    AuthenticationError,
    DecodeError,
    HTTPStatusError,
    InvalidVideoNumberError,
    MemoriesError,
    api_error,
)
from ._models import TranscriptKind

SUCCESS: Final = "0000"

VIDEO_TRANSCRIPTION: Final = "get_video_transcription"
VIDEO_CAPTION: Final = "get_video_caption"
"""Newer name of :data:`VIDEO_TRANSCRIPTION`; same parameters and answer."""
AUDIO_TRANSCRIPTION: Final = "get_audio_transcription"
PUBLIC_VIDEO_TRANSCRIPTION: Final = "get_public_video_transcription"
PUBLIC_AUDIO_TRANSCRIPTION: Final = "get_public_audio_transcription"
LIST_VIDEOS: Final = "list_videos"
GET_METADATA: Final = "get_metadata"
LIST_UNIQUE_IDS: Final = "list_unique_ids"

MAX_PAGE_SIZE: Final = 200
PUBLIC_PREFIX: Final = "PI-"
_SNIPPET = 80


@attrs.frozen(slots=True)
class Request:
    """One HTTP request, ready for a transport to send.

    ``headers`` hold the API key and are left out of ``repr()``.
    """

    method: str
    endpoint: str
    url: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    video_no: str | None = None


def is_video_no(text: str, /) -> bool:
    """Whether ``text`` is a video number as it is: what :func:`check_video_no` returns
    unchanged (not empty, no whitespace or control character anywhere)."""
    # Every whitespace character but the ASCII space is unprintable.
    return bool(text) and text.isprintable() and " " not in text


def check_video_no(video_no: object, /) -> str:
    """Return ``video_no`` stripped, or raise :class:`InvalidVideoNumberError`.

    Video numbers are opaque, but they are non-empty strings without
    whitespace or control characters inside.
    """
    if not isinstance(video_no, str):
        raise InvalidVideoNumberError(
            f"a video number must be a string, got {type(video_no).__name__}"
        )
    text = video_no.strip()
    if not text:
        raise InvalidVideoNumberError("a video number must not be empty or blank")
    if not is_video_no(text):
        raise InvalidVideoNumberError(
            f"a video number must not hold whitespace or control characters: {text!r}"
        )
    return text


def is_public(video_no: str, /) -> bool:
    """Whether ``video_no`` names a public-library video (``PI-…``)."""
    return video_no.startswith(PUBLIC_PREFIX)


def falls_back_to_caption(error: MemoriesError, /) -> bool:
    """Whether ``error`` is the HTTP 404 of the older visual endpoint name, which the client
    answers by asking the newer one (``get_video_caption``): no failure of the fetch."""
    return error.endpoint == VIDEO_TRANSCRIPTION and getattr(error, "status", None) == 404


def transcription_endpoint(kind: TranscriptKind, *, public: bool, caption: bool = False) -> str:
    """The endpoint that serves transcripts of ``kind``.

    ``caption`` picks the newer ``get_video_caption`` name for private visual
    transcripts.
    """
    if public:
        if kind is TranscriptKind.AUDIO:
            return PUBLIC_AUDIO_TRANSCRIPTION
        return PUBLIC_VIDEO_TRANSCRIPTION
    if kind is TranscriptKind.AUDIO:
        return AUDIO_TRANSCRIPTION
    return VIDEO_CAPTION if caption else VIDEO_TRANSCRIPTION


def api_url(base_url: str, endpoint: str, /) -> str:
    """The absolute URL of ``endpoint`` under ``base_url``."""
    return f"{base_url.rstrip('/')}/serve/api/v1/{endpoint}"


@functools.cache
def default_user_agent() -> str:
    """The SDK's ``User-Agent``: ``memories-async/<version> Python/<version> aiohttp/<version>``
    (what a support team needs to tell the clients of an account apart)."""
    from importlib.metadata import version

    from . import __version__

    python = ".".join(map(str, sys.version_info[:3]))
    return f"memories-async/{__version__} Python/{python} aiohttp/{version('aiohttp')}"


def user_agent(application: str | None = None, /) -> str:
    """The ``User-Agent`` of a client: ``application`` (the ``user_agent`` setting), if any,
    before :func:`default_user_agent`."""
    sdk = default_user_agent()
    return sdk if application is None else f"{application} {sdk}"


def build_headers(api_key: str, user_agent: str) -> dict[str, str]:
    """Headers of every request: the raw key (no ``Bearer``), JSON accepted."""
    return {"Authorization": api_key, "Accept": "application/json", "User-Agent": user_agent}


def get_request(
    url: str,
    endpoint: str,
    headers: Mapping[str, str],
    *,
    params: Mapping[str, str | None],
    video_no: str | None = None,
) -> Request:
    """A GET request; parameters that are ``None`` are left out (``unique_id`` is optional)."""
    query = {k: v for k, v in params.items() if v is not None}
    return Request("GET", endpoint, url, query or None, None, headers, video_no)


def post_request(
    url: str, endpoint: str, headers: Mapping[str, str], *, body: Mapping[str, Any]
) -> Request:
    """A POST request with a JSON body; ``None`` values are left out."""
    payload = orjson.dumps({k: v for k, v in body.items() if v is not None})
    return Request(
        "POST",
        endpoint,
        url,
        None,
        payload,
        {**headers, "Content-Type": "application/json"},
        None,
    )


def parse_retry_after(value: str | None, /, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, min(seconds, 3600.0))


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace")
    text = " ".join(text.split())
    return f"{text}…" if len(body) > _SNIPPET else text


def _normalize_code(code: object) -> str | None:
    if isinstance(code, str):
        return code.strip()
    if isinstance(code, int) and not isinstance(code, bool):
        return f"{code:04d}"
    return None


def parse_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    endpoint: str,
    video_no: str | None = None,
) -> Any:
    """Return the ``data`` of a successful answer, or raise the matching error.

    * A JSON envelope with a code other than ``"0000"`` raises the
      :class:`~memories_async.APIError` subclass for the code, whatever the
      HTTP status it came with.
    * An HTTP status other than 2xx without such an envelope raises
      :class:`~memories_async.HTTPStatusError` (``Retry-After`` read into
      ``retry_after``).
    * A 2xx body that is not JSON (an HTML page, a truncated answer) raises a
      retryable :class:`~memories_async.DecodeError`; JSON that is not an
      envelope raises a non-retryable one.
    """
    envelope: Any
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        envelope = None
        decode_failed = True
    else:
        decode_failed = False
        # The common case, checked first: a 200 answer with code "0000".
        if status == 200 and type(envelope) is dict and envelope.get("code") == SUCCESS:
            return envelope.get("data")

    code = _normalize_code(envelope.get("code")) if isinstance(envelope, dict) else None
    if code is not None and code != SUCCESS:
        msg = envelope.get("msg")
        error = api_error(
            code,
            msg if isinstance(msg, str) else "",
            status=status,
            video_no=video_no,
            endpoint=endpoint,
        )
        error.retry_after = parse_retry_after(headers.get("Retry-After"))
        raise error
    if status in (401, 403):
        # Refused before the API (a gateway): no call of this key will pass either.
        reason = f"HTTP {status}" + (f": {_snippet(body)}" if body else "")
        raise AuthenticationError(
            f"{reason}; the key was refused before reaching the API: check MEMORIES_API_KEY",
            code=AuthenticationError._wire_code,
            msg="",
            status=status,
            video_no=video_no,
            endpoint=endpoint,
        )
    if not 200 <= status < 300:
        reason = f"HTTP {status}"
        if body:
            reason = f"{reason}: {_snippet(body)}"
        raise HTTPStatusError(
            reason,
            status=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
            video_no=video_no,
            endpoint=endpoint,
        )
    if decode_failed:
        content_type = headers.get("Content-Type", "no content type")
        what = "an empty body" if not body else f"{content_type}: {_snippet(body)!r}"
        raise DecodeError(
            f"the answer is not JSON ({what})",
            retryable=True,
            status=status,
            video_no=video_no,
            endpoint=endpoint,
        )
    if code is None:
        raise DecodeError(
            "the answer is JSON but not the API envelope (no 'code' string)",
            status=status,
            video_no=video_no,
            endpoint=endpoint,
        )
    return envelope.get("data")
