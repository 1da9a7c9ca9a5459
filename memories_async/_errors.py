"""Every error the SDK raises, under one root.

::

    MemoriesError                      root; .video_no, .endpoint, .attempts, .retry_after
    ├── ConfigError                    a setting is missing or invalid (also a ValueError)
    ├── RateStoreError                 the shared rate store (Redis) cannot be reached or used
    ├── InvalidVideoNumberError        a video number is empty, blank or not a string
    ├── TransportError                 no usable HTTP answer: refused, reset, DNS, TLS
    │   └── RequestTimeoutError        an attempt took longer than the configured timeout
    ├── HTTPStatusError                HTTP status other than 2xx; .status
    ├── DecodeError                    the body is not the JSON envelope, or a field is wrong
    ├── APIError                       the envelope carried a code other than "0000"; .code, .msg
    │   ├── TransientAPIError          "0001": bad input, "network abnormal" or not found
    │   ├── InvalidParameterError      "0003"
    │   ├── DuplicateRequestError      "0409"
    │   ├── RateLimitError             "0429"
    │   └── AccountError               fatal for the whole client, not just one call
    │       ├── AuthenticationError    "0401": missing or invalid API key
    │       ├── InsufficientCreditsError  "0402"
    │       ├── AccountDisabledError   "0403"
    │       └── PermissionDeniedError  "9009"
    ├── AccountHaltedError             a batch stopped because of an AccountError; .cause
    ├── VideoNotReadyError             the video is still being processed; .status
    │   └── WaitTimeoutError           still not ready when the wait's timeout ran out
    ├── ProcessingFailedError          the video's processing failed; .status
    └── VideoNotFoundError             no such video (in this namespace)

Each error says whether retrying the same call may succeed (``retryable``),
whether it is a rate-limit answer (``rate_limited``) and whether it condemns
every call of the client (``fatal``). Every error carries ``attempts`` (how
many the call made) and ``retry_after`` (the seconds of a server's
``Retry-After``; ``None`` without one, as on most errors): retrying and pacing
read ``retry_after`` on any error, whatever its class. No error ever holds the
API key.
"""

from __future__ import annotations

from typing import ClassVar


class MemoriesError(Exception):
    """Root of every error raised by memories-async.

    ``str(error)`` is one line that says what happened and, where it helps,
    what to do about it.
    """

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed if tried again."""
        return False

    @property
    def rate_limited(self) -> bool:
        """Whether this is a rate-limit answer (it slows every caller of the client)."""
        return False

    @property
    def fatal(self) -> bool:
        """Whether the error condemns every further call of the client (bad key, no credits)."""
        return False

    def __init__(
        self,
        message: str,
        *,
        video_no: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        """What happened, without the endpoint and video number (``str()`` adds them)."""
        self.video_no = video_no
        """The video number of the call, when the call was about one video."""
        self.endpoint = endpoint
        """The API endpoint of the call (``get_audio_transcription``, ...), when known."""
        self.attempts = 1
        """How many attempts the call made before giving up with this error."""
        self.retry_after: float | None = None
        """Seconds the server asked callers to wait (``Retry-After``, on an HTTP 429 or
        5xx, or with a ``0429`` envelope); ``None`` when it did not."""

    def __str__(self) -> str:
        message = " ".join(self.message.split())
        where = []
        if self.endpoint:
            where.append(self.endpoint)
        if self.video_no:
            where.append(f"video_no={self.video_no}")
        return f"{message} ({', '.join(where)})" if where else message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[MemoriesError], state: dict[str, object]) -> MemoriesError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ConfigError(MemoriesError, ValueError):
    """A setting is missing or invalid; the message names it and how to fix it."""


class RateStoreError(MemoriesError):
    """The shared rate store (``rate_store=redis://…``) cannot be reached or used.

    The message names the store, with any password hidden. A client that
    loses its store mid-run does not raise this: it warns, paces in its own
    process and rejoins the store when it answers again.
    """


class InvalidVideoNumberError(MemoriesError, ValueError):
    """A video number is empty, blank, or not a string."""


class TransportError(MemoriesError):
    """No usable HTTP answer: connection refused or reset, DNS or TLS failure."""

    @property
    def retryable(self) -> bool:
        return True


class RequestTimeoutError(TransportError):
    """One attempt took longer than the configured per-attempt timeout."""


class HTTPStatusError(MemoriesError):
    """The server answered with an HTTP status other than 2xx.

    5xx and 429 are retryable; 429 is also a rate-limit answer. ``retry_after``
    holds the seconds of a ``Retry-After`` header when the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        video_no: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, video_no=video_no, endpoint=endpoint)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429) or self.status >= 500

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


class DecodeError(MemoriesError):
    """The answer is not the JSON envelope the API promises, or a field cannot be read.

    A body that is not JSON at all (an HTML page from a proxy, a truncated
    answer) is retryable; a well-formed answer with a field of the wrong type
    is not. ``field`` names the offending field (for example
    ``$.transcriptions[3].startTime``) when known.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        field: str | None = None,
        status: int | None = None,
        video_no: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, video_no=video_no, endpoint=endpoint)
        self.field = field
        self.status = status
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        return self._retryable


class APIError(MemoriesError):
    """The envelope carried a code other than ``"0000"``.

    ``code`` and ``msg`` are the service's own; ``status`` is the HTTP status
    the envelope came with (normally 200).
    """

    _wire_code: ClassVar[str] = ""
    """The envelope code this class stands for (empty on the base class)."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        msg: str,
        status: int = 200,
        video_no: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, video_no=video_no, endpoint=endpoint)
        self.code = code
        self.msg = msg
        self.status = status


class TransientAPIError(APIError):
    """Code ``"0001"``: a parameter problem, a passing "network abnormal", or an unknown video.

    The service uses the same code for all three, so the client retries it a
    few times before reporting it.
    """

    @property
    def retryable(self) -> bool:
        return True

    _wire_code = "0001"


class InvalidParameterError(APIError):
    """Code ``"0003"``: the service refused a parameter."""

    _wire_code = "0003"


class DuplicateRequestError(APIError):
    """Code ``"0409"``: the service saw the same request already."""

    _wire_code = "0409"


class RateLimitError(APIError):
    """Code ``"0429"``: the account exceeded its request rate; every caller backs off."""

    @property
    def retryable(self) -> bool:
        return True

    @property
    def rate_limited(self) -> bool:
        return True

    _wire_code = "0429"


class AccountError(APIError):
    """An answer that condemns every call of the client, not only this one."""

    @property
    def fatal(self) -> bool:
        return True


class AuthenticationError(AccountError):
    """Code ``"0401"``: the API key is missing or invalid."""

    _wire_code = "0401"


class InsufficientCreditsError(AccountError):
    """Code ``"0402"``: the account has run out of credits."""

    _wire_code = "0402"


class AccountDisabledError(AccountError):
    """Code ``"0403"``: the developer account is disabled."""

    _wire_code = "0403"


class PermissionDeniedError(AccountError):
    """Code ``"9009"``: permission denied; check the API key."""

    _wire_code = "9009"


class AccountHaltedError(MemoriesError):
    """A batch stopped early because one call hit an account-wide error.

    ``cause`` is the :class:`AccountError` that stopped it; retrying any id of
    the batch would fail the same way until the account is fixed.
    """

    @property
    def fatal(self) -> bool:
        return True

    def __init__(self, cause: AccountError) -> None:
        super().__init__(f"batch stopped: {cause}")
        self.cause = cause


class VideoNotReadyError(MemoriesError):
    """The video is still being processed: its transcripts do not exist yet.

    ``status`` is the status the service gave (``UNPARSE``, or a word this client does not
    know). The service answers an empty transcript for such a video, which a batch does
    not take for a finished one: wait for it (``wait=True``,
    :meth:`~memories_async.MemoriesClient.wait_until_ready`) or fetch it again later.
    """

    def __init__(self, status: str, *, video_no: str | None = None) -> None:
        super().__init__(
            f"the video is not ready (status {status}): its transcripts do not exist yet;"
            " wait for it or fetch it again later",
            video_no=video_no,
        )
        self.status = status


class WaitTimeoutError(VideoNotReadyError):
    """The video was still not ready when the wait's ``timeout`` ran out."""

    def __init__(self, status: str, *, timeout: float, video_no: str | None = None) -> None:
        super().__init__(status, video_no=video_no)
        self.message = (
            f"the video was still not ready (status {status}) after waiting {timeout:g} seconds"
        )
        self.timeout = timeout


class ProcessingFailedError(MemoriesError):
    """The video's processing failed (``PARSE_ERROR``, ``FAIL``, ``FAILED``): its
    transcripts will never come; ``status`` is the word the service gave."""

    def __init__(self, status: str, *, video_no: str | None = None) -> None:
        super().__init__(
            f"the video's processing failed (status {status}): it has no transcripts;"
            " upload it again",
            video_no=video_no,
        )
        self.status = status


class VideoNotFoundError(MemoriesError):
    """The service knows no video of this number (in this ``unique_id`` namespace)."""

    def __init__(self, *, video_no: str | None = None) -> None:
        super().__init__(
            "no such video (check the number and the unique_id namespace)", video_no=video_no
        )


API_ERRORS_BY_CODE: dict[str, type[APIError]] = {
    cls._wire_code: cls
    for cls in (
        TransientAPIError,
        InvalidParameterError,
        DuplicateRequestError,
        RateLimitError,
        AuthenticationError,
        InsufficientCreditsError,
        AccountDisabledError,
        PermissionDeniedError,
    )
}
"""The class each documented envelope code maps to; other codes raise :class:`APIError`."""

_HINTS = {
    "0401": "check MEMORIES_API_KEY (the raw key, without 'Bearer')",
    "0402": "the account is out of credits",
    "0403": "the developer account is disabled",
    "9009": "check that the API key has access to this resource",
    "0429": "requests exceeded the account's rate limit",
}


def api_error(
    code: str,
    msg: str,
    *,
    status: int = 200,
    video_no: str | None = None,
    endpoint: str | None = None,
) -> APIError:
    """Build the :class:`APIError` subclass for an envelope ``code`` and ``msg``."""
    cls = API_ERRORS_BY_CODE.get(code, APIError)
    hint = _HINTS.get(code)
    message = f"API error {code}: {msg or 'no message'}"
    if hint:
        message = f"{message}; {hint}"
    return cls(message, code=code, msg=msg, status=status, video_no=video_no, endpoint=endpoint)
