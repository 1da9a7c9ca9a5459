"""The sans-I/O protocol: envelopes, HTTP statuses, Retry-After, video numbers, requests."""

from __future__ import annotations

import email.utils
from typing import Any

import orjson
import pytest

from memories_async import (
    AccountDisabledError,
    APIError,
    AuthenticationError,
    DecodeError,
    DuplicateRequestError,
    HTTPStatusError,
    InsufficientCreditsError,
    InvalidParameterError,
    InvalidVideoNumberError,
    PermissionDeniedError,
    RateLimitError,
    TranscriptKind,
    TransientAPIError,
)
from memories_async._protocol import (
    AUDIO_TRANSCRIPTION,
    GET_METADATA,
    LIST_VIDEOS,
    PUBLIC_AUDIO_TRANSCRIPTION,
    PUBLIC_VIDEO_TRANSCRIPTION,
    VIDEO_CAPTION,
    VIDEO_TRANSCRIPTION,
    Request,
    api_url,
    build_headers,
    check_video_no,
    get_request,
    is_public,
    parse_response,
    parse_retry_after,
    post_request,
    transcription_endpoint,
)

KEY = "sk-test-0123456789abcdef"
EP = "get_audio_transcription"
VNO = "VI606041694843813888"


def body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def parse(status: int, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return parse_response(status, headers or {}, raw, endpoint=EP, video_no=VNO)


# --- successful envelopes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"videoNo": VNO, "transcriptions": []},
        [1, 2, 3],
        "text",
        0,
        None,
        {},
    ],
)
def test_success_returns_data(data: Any) -> None:
    envelope = {"code": "0000", "msg": "success", "data": data, "success": True, "failed": False}
    assert parse(200, body(envelope)) == data


def test_success_without_data_key_returns_none() -> None:
    assert parse(200, body({"code": "0000", "msg": "success"})) is None


def test_success_without_success_failed_flags() -> None:
    assert parse(200, body({"code": "0000", "data": {"a": 1}})) == {"a": 1}


@pytest.mark.parametrize("code", [0, "0000", " 0000 "])
def test_success_code_forms(code: Any) -> None:
    # An integer 0 is read as "0000"; surrounding blanks are ignored.
    assert parse(200, body({"code": code, "data": "ok"})) == "ok"


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_status_is_success(status: int) -> None:
    assert parse(status, body({"code": "0000", "data": 1})) == 1


# --- error envelopes -----------------------------------------------------------------------------

ERROR_CODES = [
    ("0001", TransientAPIError),
    ("0003", InvalidParameterError),
    ("0409", DuplicateRequestError),
    ("0429", RateLimitError),
    ("0401", AuthenticationError),
    ("0402", InsufficientCreditsError),
    ("0403", AccountDisabledError),
    ("9009", PermissionDeniedError),
    ("1234", APIError),
]


@pytest.mark.parametrize(("code", "cls"), ERROR_CODES)
def test_error_code_raises_its_class(code: str, cls: type[APIError]) -> None:
    with pytest.raises(cls) as info:
        parse(200, body({"code": code, "msg": "the message"}))
    error = info.value
    assert type(error) is cls
    assert error.code == code
    assert error.msg == "the message"
    assert error.status == 200
    assert error.video_no == VNO
    assert error.endpoint == EP


@pytest.mark.parametrize(("code", "cls"), ERROR_CODES)
def test_error_code_with_full_envelope(code: str, cls: type[APIError]) -> None:
    envelope = {"code": code, "msg": "m", "data": None, "success": False, "failed": True}
    with pytest.raises(cls):
        parse(200, body(envelope))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1, TransientAPIError),
        (429, RateLimitError),
        (401, AuthenticationError),
        (9009, PermissionDeniedError),
    ],
)
def test_integer_codes_are_zero_padded(code: int, cls: type[APIError]) -> None:
    with pytest.raises(cls) as info:
        parse(200, body({"code": code, "msg": "m"}))
    assert info.value.code == f"{code:04d}"


@pytest.mark.parametrize("msg", [None, 5, ["x"]])
def test_error_without_string_msg(msg: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse(200, body({"code": "0003", "msg": msg}))
    assert info.value.msg == ""


def test_error_without_msg_key() -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse(200, body({"code": "0003"}))
    assert info.value.msg == ""


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "0401", AuthenticationError),
        (500, "0001", TransientAPIError),
        (429, "0429", RateLimitError),
        (403, "9009", PermissionDeniedError),
        (502, "7777", APIError),
    ],
)
def test_error_envelope_on_http_error_is_api_error(
    status: int, code: str, cls: type[APIError]
) -> None:
    with pytest.raises(cls) as info:
        parse(status, body({"code": code, "msg": "m"}))
    assert not isinstance(info.value, HTTPStatusError)
    assert info.value.status == status
    assert info.value.code == code


def test_rate_limit_envelope_flags() -> None:
    with pytest.raises(RateLimitError) as info:
        parse(200, body({"code": "0429", "msg": "Request has exceeded the limit."}))
    assert info.value.rate_limited
    assert info.value.retryable
    assert not info.value.fatal


# --- HTTP errors ---------------------------------------------------------------------------------

HTML = b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_5xx_html_is_retryable_status_error(status: int) -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(status, HTML, {"Content-Type": "text/html"})
    error = info.value
    assert error.status == status
    assert error.retryable
    assert not error.rate_limited
    assert error.retry_after is None
    assert error.video_no == VNO
    assert error.endpoint == EP
    text = str(error)
    assert f"HTTP {status}" in text
    assert "502 Bad Gateway" in text
    assert "\n" not in text


def test_http_error_snippet_is_truncated() -> None:
    raw = b"<html>" + b"x" * 500 + b"</html>"
    with pytest.raises(HTTPStatusError) as info:
        parse(503, raw)
    message = info.value.message
    assert message.endswith("…")
    assert len(message) < 120


def test_http_error_snippet_survives_invalid_utf8() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(500, b"\xff\xfe broken")
    assert "broken" in str(info.value)


def test_http_error_empty_body() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(500, b"")
    assert info.value.message == "HTTP 500"


def test_http_error_with_json_that_is_not_an_envelope() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(502, body({"error": "bad gateway"}))
    assert info.value.status == 502


def test_http_error_with_success_envelope_is_status_error() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(500, body({"code": "0000", "data": 1}))
    assert info.value.status == 500


def test_http_429_with_retry_after_seconds() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(429, b"Too Many Requests", {"Retry-After": "7"})
    error = info.value
    assert error.status == 429
    assert error.retry_after == 7.0
    assert error.retryable
    assert error.rate_limited


def test_http_429_with_retry_after_date_in_the_past() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert info.value.retry_after == 0.0


def test_http_429_with_retry_after_date_far_ahead_is_capped() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(429, b"", {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert info.value.retry_after == 3600.0


def test_http_429_without_retry_after() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(429, b"")
    assert info.value.retry_after is None


def test_http_503_with_retry_after() -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(503, HTML, {"Retry-After": "120"})
    assert info.value.retry_after == 120.0


@pytest.mark.parametrize("status", [400, 404, 405, 410])
def test_http_4xx_not_retryable(status: int) -> None:
    with pytest.raises(HTTPStatusError) as info:
        parse(status, b"<html>Not Found</html>")
    assert info.value.status == status
    assert not info.value.retryable
    assert not info.value.rate_limited


@pytest.mark.parametrize("status", [301, 302, 304])
def test_http_3xx_is_status_error(status: int) -> None:
    with pytest.raises(HTTPStatusError):
        parse(status, b"")


# --- bodies that are not the envelope ------------------------------------------------------------


def test_200_html_is_retryable_decode_error_naming_content_type() -> None:
    with pytest.raises(DecodeError) as info:
        parse(200, HTML, {"Content-Type": "text/html; charset=utf-8"})
    error = info.value
    assert error.retryable
    assert error.status == 200
    assert error.video_no == VNO
    assert error.endpoint == EP
    assert "text/html" in str(error)
    assert "not JSON" in str(error)
    assert "\n" not in str(error)


def test_200_not_json_without_content_type() -> None:
    with pytest.raises(DecodeError) as info:
        parse(200, b"oops")
    assert info.value.retryable
    assert "no content type" in str(info.value)


@pytest.mark.parametrize(
    "raw", [b'{"code": "0000", "data": {"videoNo": "VI1", "transcr', b'{"code":"00', b"{", b"[1,"]
)
def test_truncated_json_is_retryable_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        parse(200, raw, {"Content-Type": "application/json"})
    assert info.value.retryable
    assert info.value.field is None


def test_empty_body_is_retryable_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        parse(200, b"")
    assert info.value.retryable
    assert "empty body" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"msg": "success", "data": {"a": 1}},
        {"code": None, "data": 1},
        {"code": True, "data": 1},
        {"code": 1.5, "data": 1},
        {"code": ["0000"]},
        [1, 2],
        [{"code": "0000"}],
        "0000",
        42,
        None,
    ],
    ids=repr,
)
def test_json_that_is_not_an_envelope_is_fatal_decode_error(payload: Any) -> None:
    with pytest.raises(DecodeError) as info:
        parse(200, body(payload))
    assert not info.value.retryable
    assert info.value.status == 200
    assert "envelope" in str(info.value)


# --- parse_retry_after ---------------------------------------------------------------------------

NOW = 1_445_412_450.0  # Wed, 21 Oct 2015 07:27:30 GMT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("99999", 3600.0),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 09:27:30 GMT", 3600.0),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date_from_formatdate() -> None:
    header = email.utils.formatdate(NOW + 45, usegmt=True)
    assert parse_retry_after(header, now=NOW) == 45.0


# --- video numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VNO, VNO),
        ("PI-606041694843813888", "PI-606041694843813888"),
        (f"  {VNO}\n", VNO),
        (f"\t{VNO}\r\n", VNO),
        ("x", "x"),
    ],
)
def test_check_video_no_accepts_and_strips(value: str, expected: str) -> None:
    assert check_video_no(value) == expected


@pytest.mark.parametrize("value", ["", " ", "\n\t "])
def test_check_video_no_refuses_empty(value: str) -> None:
    with pytest.raises(InvalidVideoNumberError, match="empty"):
        check_video_no(value)


@pytest.mark.parametrize("value", [None, 606041694843813888, 1.5, b"VI1", ["VI1"], True])
def test_check_video_no_refuses_non_strings(value: Any) -> None:
    with pytest.raises(InvalidVideoNumberError, match="string"):
        check_video_no(value)


@pytest.mark.parametrize(
    "value",
    [
        "VI60604 1694843813888",
        "VI6060\n41694843813888",
        "VI6060\t4",
        "VI\x00606",
        "VI\x1b[31m",
        "VI\u200b606",
        "VI\u00a0606",
    ],
)
def test_check_video_no_refuses_inner_whitespace_and_controls(value: str) -> None:
    with pytest.raises(InvalidVideoNumberError, match="whitespace or control"):
        check_video_no(value)


def test_invalid_video_number_is_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the class hierarchy is what is tested
        check_video_no("")


@pytest.mark.parametrize(
    ("value", "public"),
    [("PI-606041694843813888", True), (VNO, False), ("pi-1", False), ("PI606", False)],
)
def test_is_public(value: str, public: bool) -> None:
    assert is_public(value) is public


# --- endpoints and URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "public", "caption", "expected"),
    [
        (TranscriptKind.VISUAL, False, False, VIDEO_TRANSCRIPTION),
        (TranscriptKind.VISUAL, False, True, VIDEO_CAPTION),
        (TranscriptKind.AUDIO, False, False, AUDIO_TRANSCRIPTION),
        (TranscriptKind.AUDIO, False, True, AUDIO_TRANSCRIPTION),
        (TranscriptKind.VISUAL, True, False, PUBLIC_VIDEO_TRANSCRIPTION),
        (TranscriptKind.VISUAL, True, True, PUBLIC_VIDEO_TRANSCRIPTION),
        (TranscriptKind.AUDIO, True, False, PUBLIC_AUDIO_TRANSCRIPTION),
        (TranscriptKind.AUDIO, True, True, PUBLIC_AUDIO_TRANSCRIPTION),
    ],
)
def test_transcription_endpoint(
    kind: TranscriptKind, public: bool, caption: bool, expected: str
) -> None:
    assert transcription_endpoint(kind, public=public, caption=caption) == expected


def test_transcription_endpoint_caption_defaults_off() -> None:
    assert transcription_endpoint(TranscriptKind.VISUAL, public=False) == VIDEO_TRANSCRIPTION


def test_endpoint_names() -> None:
    assert VIDEO_TRANSCRIPTION == "get_video_transcription"
    assert VIDEO_CAPTION == "get_video_caption"
    assert AUDIO_TRANSCRIPTION == "get_audio_transcription"
    assert PUBLIC_VIDEO_TRANSCRIPTION == "get_public_video_transcription"
    assert PUBLIC_AUDIO_TRANSCRIPTION == "get_public_audio_transcription"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.memories.ai", "https://api.memories.ai/serve/api/v1/list_videos"),
        ("https://api.memories.ai/", "https://api.memories.ai/serve/api/v1/list_videos"),
        ("http://127.0.0.1:9000//", "http://127.0.0.1:9000/serve/api/v1/list_videos"),
    ],
)
def test_api_url(base: str, expected: str) -> None:
    assert api_url(base, LIST_VIDEOS) == expected


def test_build_headers_send_raw_key() -> None:
    headers = build_headers(KEY, "memories-async/1.0")
    assert headers["Authorization"] == KEY
    assert "Bearer" not in headers["Authorization"]
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "memories-async/1.0"


# --- requests ------------------------------------------------------------------------------------


def test_get_request_drops_none_params() -> None:
    headers = build_headers(KEY, "ua")
    url = api_url("https://api.test", GET_METADATA)
    request = get_request(
        url, GET_METADATA, headers, params={"video_no": VNO, "unique_id": None}, video_no=VNO
    )
    assert request.method == "GET"
    assert request.endpoint == GET_METADATA
    assert request.url == url
    assert request.params == {"video_no": VNO}
    assert request.body is None
    assert request.headers == headers
    assert request.video_no == VNO


def test_get_request_keeps_given_params() -> None:
    request = get_request(
        "u", EP, {}, params={"video_no": VNO, "unique_id": "tenant"}, video_no=VNO
    )
    assert request.params == {"video_no": VNO, "unique_id": "tenant"}


def test_get_request_all_params_none_gives_no_query() -> None:
    request = get_request("u", "list_unique_ids", {}, params={"unique_id": None})
    assert request.params is None
    assert request.video_no is None


def test_get_request_keeps_empty_string_param() -> None:
    # Only None is dropped; callers are responsible for never sending "".
    request = get_request("u", EP, {}, params={"video_no": VNO, "unique_id": ""})
    assert request.params == {"video_no": VNO, "unique_id": ""}


def test_post_request_json_body_drops_none() -> None:
    headers = build_headers(KEY, "ua")
    request = post_request(
        "u",
        LIST_VIDEOS,
        headers,
        body={"page": 1, "size": 200, "unique_id": None, "status": None, "video_nos": ["VI1"]},
    )
    assert request.method == "POST"
    assert request.endpoint == LIST_VIDEOS
    assert request.params is None
    assert request.body is not None
    assert orjson.loads(request.body) == {"page": 1, "size": 200, "video_nos": ["VI1"]}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == KEY
    assert request.video_no is None


def test_post_request_does_not_mutate_given_headers() -> None:
    headers = build_headers(KEY, "ua")
    before = dict(headers)
    post_request("u", LIST_VIDEOS, headers, body={})
    assert headers == before


def test_post_request_empty_body_is_empty_object() -> None:
    request = post_request("u", LIST_VIDEOS, {}, body={"x": None})
    assert request.body == b"{}"


@pytest.mark.parametrize("kind", ["get", "post"])
def test_request_repr_hides_headers_and_key(kind: str) -> None:
    headers = build_headers(KEY, "ua")
    if kind == "get":
        request = get_request("https://api.test/x", EP, headers, params={"video_no": VNO})
    else:
        request = post_request("https://api.test/x", LIST_VIDEOS, headers, body={"page": 1})
    text = repr(request)
    assert KEY not in text
    assert "Authorization" not in text
    assert "headers" not in text
    assert "https://api.test/x" in text


def test_request_is_frozen() -> None:
    import attrs

    request = Request("GET", EP, "u")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.url = "v"  # type: ignore[misc]
    assert request.params is None
    assert request.body is None
    assert request.headers == {}


def test_the_user_agent_names_the_sdk_python_and_aiohttp() -> None:
    import sys

    import aiohttp

    import memories_async
    from memories_async._protocol import default_user_agent, user_agent

    python = ".".join(map(str, sys.version_info[:3]))
    expected = (
        f"memories-async/{memories_async.__version__} Python/{python} aiohttp/{aiohttp.__version__}"
    )
    assert default_user_agent() == user_agent() == expected
    assert user_agent("my-app/2.1") == f"my-app/2.1 {expected}"
