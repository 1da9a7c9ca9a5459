"""The error tree: classes, flags, messages, pickling, and the envelope-code mapping."""

from __future__ import annotations

import pickle

import pytest

from memories_async import (
    AccountDisabledError,
    AccountError,
    AccountHaltedError,
    APIError,
    AuthenticationError,
    ConfigError,
    DecodeError,
    DuplicateRequestError,
    HTTPStatusError,
    InsufficientCreditsError,
    InvalidParameterError,
    InvalidVideoNumberError,
    MemoriesError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    TransientAPIError,
    TransportError,
)
from memories_async._errors import API_ERRORS_BY_CODE, api_error

# --- the tree ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ConfigError, MemoriesError),
        (ConfigError, ValueError),
        (InvalidVideoNumberError, MemoriesError),
        (InvalidVideoNumberError, ValueError),
        (TransportError, MemoriesError),
        (RequestTimeoutError, TransportError),
        (HTTPStatusError, MemoriesError),
        (DecodeError, MemoriesError),
        (APIError, MemoriesError),
        (TransientAPIError, APIError),
        (InvalidParameterError, APIError),
        (DuplicateRequestError, APIError),
        (RateLimitError, APIError),
        (AccountError, APIError),
        (AuthenticationError, AccountError),
        (InsufficientCreditsError, AccountError),
        (AccountDisabledError, AccountError),
        (PermissionDeniedError, AccountError),
        (AccountHaltedError, MemoriesError),
        (MemoriesError, Exception),
    ],
)
def test_subclass_relations(child: type[BaseException], parent: type[BaseException]) -> None:
    assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("cls", "not_parent"),
    [
        (TransportError, APIError),
        (HTTPStatusError, APIError),
        (DecodeError, APIError),
        (RateLimitError, AccountError),
        (TransientAPIError, AccountError),
        (AccountHaltedError, APIError),
        (AccountHaltedError, AccountError),
        (HTTPStatusError, TransportError),
        (TransportError, ValueError),
        (APIError, ValueError),
    ],
)
def test_unrelated_classes(cls: type[BaseException], not_parent: type[BaseException]) -> None:
    assert not issubclass(cls, not_parent)


# --- api_error: envelope code -> class -----------------------------------------------------------

DOCUMENTED_CODES = [
    ("0001", TransientAPIError),
    ("0003", InvalidParameterError),
    ("0409", DuplicateRequestError),
    ("0429", RateLimitError),
    ("0401", AuthenticationError),
    ("0402", InsufficientCreditsError),
    ("0403", AccountDisabledError),
    ("9009", PermissionDeniedError),
]


@pytest.mark.parametrize(("code", "cls"), DOCUMENTED_CODES)
def test_api_error_maps_documented_codes(code: str, cls: type[APIError]) -> None:
    error = api_error(code, "some message", status=200, video_no="VI1", endpoint="ep")
    assert type(error) is cls
    assert error.code == code
    assert error.msg == "some message"
    assert error.status == 200
    assert error.video_no == "VI1"
    assert error.endpoint == "ep"
    assert code in str(error)
    assert "some message" in str(error)
    assert cls._wire_code == code


def test_codes_table_covers_exactly_the_documented_codes() -> None:
    assert dict(API_ERRORS_BY_CODE) == dict(DOCUMENTED_CODES)


@pytest.mark.parametrize("code", ["9999", "0002", "1234", "", "abc", "0000"])
def test_api_error_unknown_code_is_base_class(code: str) -> None:
    error = api_error(code, "strange")
    assert type(error) is APIError
    assert error.code == code
    assert error.msg == "strange"
    assert not error.retryable
    assert not error.fatal
    assert not error.rate_limited


def test_api_error_defaults() -> None:
    error = api_error("0003", "bad")
    assert error.status == 200
    assert error.video_no is None
    assert error.endpoint is None
    assert error.attempts == 1


def test_api_error_without_message_says_so() -> None:
    error = api_error("0003", "")
    assert error.msg == ""
    assert "no message" in str(error)


def test_auth_error_message_says_how_to_fix() -> None:
    text = str(api_error("0401", "authorization invalid"))
    assert "MEMORIES_API_KEY" in text
    assert "Bearer" in text


@pytest.mark.parametrize("code", ["0402", "0403", "9009", "0429"])
def test_api_error_hints(code: str) -> None:
    error = api_error(code, "x")
    assert str(error).startswith(f"API error {code}: x; ")


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable", "rate_limited", "fatal"),
    [
        (MemoriesError("m"), False, False, False),
        (ConfigError("m"), False, False, False),
        (InvalidVideoNumberError("m"), False, False, False),
        (TransportError("m"), True, False, False),
        (RequestTimeoutError("m"), True, False, False),
        (DecodeError("m"), False, False, False),
        (DecodeError("m", retryable=True), True, False, False),
        (APIError("m", code="7777", msg="x"), False, False, False),
        (TransientAPIError("m", code="0001", msg="x"), True, False, False),
        (InvalidParameterError("m", code="0003", msg="x"), False, False, False),
        (DuplicateRequestError("m", code="0409", msg="x"), False, False, False),
        (RateLimitError("m", code="0429", msg="x"), True, True, False),
        (AuthenticationError("m", code="0401", msg="x"), False, False, True),
        (InsufficientCreditsError("m", code="0402", msg="x"), False, False, True),
        (AccountDisabledError("m", code="0403", msg="x"), False, False, True),
        (PermissionDeniedError("m", code="9009", msg="x"), False, False, True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_flags_per_class(
    error: MemoriesError, retryable: bool, rate_limited: bool, fatal: bool
) -> None:
    assert error.retryable is retryable
    assert error.rate_limited is rate_limited
    assert error.fatal is fatal


@pytest.mark.parametrize(("code", "cls"), DOCUMENTED_CODES)
def test_flags_via_api_error(code: str, cls: type[APIError]) -> None:
    error = api_error(code, "x")
    assert error.retryable is (code in ("0001", "0429"))
    assert error.rate_limited is (code == "0429")
    assert error.fatal is issubclass(cls, AccountError)


@pytest.mark.parametrize(
    ("status", "retryable", "rate_limited"),
    [
        (429, True, True),
        (408, True, False),
        (500, True, False),
        (502, True, False),
        (503, True, False),
        (504, True, False),
        (599, True, False),
        (400, False, False),
        (401, False, False),
        (403, False, False),
        (404, False, False),
        (409, False, False),
        (301, False, False),
    ],
)
def test_http_status_flags(status: int, retryable: bool, rate_limited: bool) -> None:
    error = HTTPStatusError(f"HTTP {status}", status=status)
    assert error.status == status
    assert error.retryable is retryable
    assert error.rate_limited is rate_limited
    assert error.fatal is False
    assert error.retry_after is None


def test_http_status_error_keeps_retry_after() -> None:
    error = HTTPStatusError("HTTP 429", status=429, retry_after=7.5)
    assert error.retry_after == 7.5


def test_decode_error_attributes() -> None:
    error = DecodeError("bad", field="$.x", status=200, video_no="VI1", endpoint="ep")
    assert error.field == "$.x"
    assert error.status == 200
    assert not error.retryable


# --- messages ------------------------------------------------------------------------------------


def test_str_without_context_is_the_message() -> None:
    assert str(MemoriesError("something failed")) == "something failed"


def test_str_names_endpoint_and_video_no() -> None:
    error = TransportError("connection reset", video_no="VI606041694843813888", endpoint="ep")
    text = str(error)
    assert "connection reset" in text
    assert "ep" in text
    assert "video_no=VI606041694843813888" in text
    assert "\n" not in text


def test_str_with_only_video_no() -> None:
    assert str(MemoriesError("m", video_no="VI1")) == "m (video_no=VI1)"


def test_str_with_only_endpoint() -> None:
    assert str(MemoriesError("m", endpoint="list_videos")) == "m (list_videos)"


@pytest.mark.parametrize(("code", "cls"), [*DOCUMENTED_CODES, ("5555", APIError)])
def test_api_error_str_is_one_line(code: str, cls: type[APIError]) -> None:
    text = str(api_error(code, "msg", video_no="VI1", endpoint="get_audio_transcription"))
    assert "\n" not in text
    assert "get_audio_transcription" in text
    assert "video_no=VI1" in text


def test_api_error_str_is_one_line_even_with_multiline_msg() -> None:
    error = api_error("0001", "network\nabnormal", video_no="VI1")
    assert "\n" not in str(error)
    assert error.msg == "network\nabnormal"


def test_repr_names_the_class() -> None:
    error = RateLimitError("too fast", code="0429", msg="x", video_no="VI1")
    assert repr(error).startswith("RateLimitError(")
    assert "too fast" in repr(error)


def test_attempts_defaults_to_one_and_is_writable() -> None:
    error = TransportError("m")
    assert error.attempts == 1
    error.attempts = 4
    assert error.attempts == 4


@pytest.mark.parametrize(
    "error",
    [
        MemoriesError("m"),
        ConfigError("bad setting"),
        TransportError("reset"),
        DecodeError("bad", retryable=True),
        HTTPStatusError("HTTP 503", status=503),
        api_error("0001", "network abnormal"),
        api_error("0429", "Request has exceeded the limit."),
        AccountHaltedError(AuthenticationError("bad", code="0401", msg="bad")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_has_retry_after_none_by_default(error: MemoriesError) -> None:
    # The root holds it: retrying and pacing read it on any error.
    assert "retry_after" in vars(error)
    assert error.retry_after is None
    error.retry_after = 3.0
    assert error.retry_after == 3.0


# --- pickling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        MemoriesError("m", video_no="VI1", endpoint="ep"),
        ConfigError("bad setting"),
        InvalidVideoNumberError("bad number"),
        TransportError("reset", video_no="VI1"),
        RequestTimeoutError("slow", endpoint="ep"),
        HTTPStatusError("HTTP 503", status=503, retry_after=2.0, video_no="VI1", endpoint="ep"),
        DecodeError("bad", retryable=True, field="$.a", status=200, video_no="VI1"),
        api_error("0001", "network abnormal", video_no="VI1", endpoint="ep"),
        api_error("0429", "Request has exceeded the limit.", status=429),
        api_error("0401", "bad key"),
        api_error("7777", "unknown"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pickle_round_trip(error: MemoriesError) -> None:
    error.attempts = 3
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    assert vars(clone) == vars(error)
    assert clone.retryable is error.retryable
    assert clone.rate_limited is error.rate_limited
    assert clone.fatal is error.fatal
    assert clone.attempts == 3


# --- AccountHaltedError --------------------------------------------------------------------------


def test_account_halted_error() -> None:
    cause = api_error("0402", "no credits", video_no="VI9", endpoint="ep")
    assert isinstance(cause, AccountError)
    halted = AccountHaltedError(cause)
    assert halted.cause is cause
    assert halted.fatal is True
    assert halted.retryable is False
    assert halted.rate_limited is False
    assert str(halted).startswith("batch stopped: ")
    assert "0402" in str(halted)
    assert "\n" not in str(halted)


def test_account_halted_error_pickles_with_its_cause() -> None:
    cause = api_error("0401", "bad key")
    assert isinstance(cause, AccountError)
    halted = AccountHaltedError(cause)
    clone = pickle.loads(pickle.dumps(halted))
    assert type(clone) is AccountHaltedError
    assert type(clone.cause) is AuthenticationError
    assert clone.cause.code == "0401"
    assert str(clone) == str(halted)


def test_errors_can_be_raised_and_caught_by_root() -> None:
    with pytest.raises(MemoriesError) as info:
        raise api_error("9009", "permission denied")
    assert isinstance(info.value, PermissionDeniedError)
