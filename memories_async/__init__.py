"""memories-async: an asyncio-first client for the memories.ai video-understanding API.

Pull the transcripts of many videos concurrently and reliably::

    async with MemoriesClient() as client:
        transcript = await client.get_transcription("VI606041694843813888")

Everything public is importable from this package; its submodules are private,
except :mod:`memories_async.testing` (a fake server for tests).
"""

from importlib.metadata import PackageNotFoundError, version

from ._client import MemoriesClient
from ._config import Config, RetryPolicy
from ._errors import (
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
from ._governor import GovernorStats, RateGovernor
from ._models import Segment, Transcript, TranscriptKind, Video, VideoStatus

try:
    __version__ = version("memories-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "APIError",
    "AccountDisabledError",
    "AccountError",
    "AccountHaltedError",
    "AuthenticationError",
    "Config",
    "ConfigError",
    "DecodeError",
    "DuplicateRequestError",
    "GovernorStats",
    "HTTPStatusError",
    "InsufficientCreditsError",
    "InvalidParameterError",
    "InvalidVideoNumberError",
    "MemoriesClient",
    "MemoriesError",
    "PermissionDeniedError",
    "RateGovernor",
    "RateLimitError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Segment",
    "Transcript",
    "TranscriptKind",
    "TransientAPIError",
    "TransportError",
    "Video",
    "VideoStatus",
    "__version__",
]
