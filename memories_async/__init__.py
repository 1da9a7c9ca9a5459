"""memories-async: an asyncio-first client for the memories.ai video-understanding API.

Pull the transcripts of many videos concurrently and reliably::

    async with MemoriesClient() as client:
        transcript = await client.get_transcription("VI606041694843813888")

Everything public is importable from this package; its submodules are private,
except :mod:`memories_async.testing` (a fake server for tests).
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._batch import (
        BatchEvent,
        BatchStats,
        EventType,
        Failed,
        Fetched,
        LatencyHistogram,
        Outcome,
        Outcomes,
        TranscriptBatch,
    )
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
        ProcessingFailedError,
        RateLimitError,
        RateStoreError,
        RequestTimeoutError,
        TransientAPIError,
        TransportError,
        VideoNotFoundError,
        VideoNotReadyError,
        WaitTimeoutError,
    )
    from ._export import ExportStats, FailureRecord, export_transcripts, read_id_file
    from ._formats import ExportFormat, to_json_record, to_srt, to_text, to_vtt
    from ._governor import GovernorStats, RateGovernor
    from ._ids import IdInputError
    from ._models import Segment, Transcript, TranscriptKind, Video, VideoStatus
    from ._sinks import OutputError

# The names are imported on first use: importing the package (as the pytest plugin of
# memories_async.testing does at every pytest start) costs neither aiohttp nor the client.
_HOMES = {
    "_batch": (
        "BatchEvent",
        "BatchStats",
        "EventType",
        "Failed",
        "Fetched",
        "LatencyHistogram",
        "Outcome",
        "Outcomes",
        "TranscriptBatch",
    ),
    "_client": ("MemoriesClient",),
    "_config": ("Config", "RetryPolicy"),
    "_errors": (
        "AccountDisabledError",
        "AccountError",
        "AccountHaltedError",
        "APIError",
        "AuthenticationError",
        "ConfigError",
        "DecodeError",
        "DuplicateRequestError",
        "HTTPStatusError",
        "InsufficientCreditsError",
        "InvalidParameterError",
        "InvalidVideoNumberError",
        "MemoriesError",
        "PermissionDeniedError",
        "ProcessingFailedError",
        "RateLimitError",
        "RateStoreError",
        "RequestTimeoutError",
        "TransientAPIError",
        "TransportError",
        "VideoNotFoundError",
        "VideoNotReadyError",
        "WaitTimeoutError",
    ),
    "_export": ("ExportStats", "FailureRecord", "export_transcripts", "read_id_file"),
    "_formats": ("ExportFormat", "to_json_record", "to_srt", "to_text", "to_vtt"),
    "_governor": ("GovernorStats", "RateGovernor"),
    "_ids": ("IdInputError",),
    "_models": ("Segment", "Transcript", "TranscriptKind", "Video", "VideoStatus"),
    "_sinks": ("OutputError",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

# A library logs; the application decides where the lines go.
logging.getLogger("memories_async").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    # __version__ is looked up when asked for: importlib.metadata costs a command
    # line more start-up time than the rest of the package.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("memories-async")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF, "__version__"})


__all__ = [
    "APIError",
    "AccountDisabledError",
    "AccountError",
    "AccountHaltedError",
    "AuthenticationError",
    "BatchEvent",
    "BatchStats",
    "Config",
    "ConfigError",
    "DecodeError",
    "DuplicateRequestError",
    "EventType",
    "ExportFormat",
    "ExportStats",
    "Failed",
    "FailureRecord",
    "Fetched",
    "GovernorStats",
    "HTTPStatusError",
    "IdInputError",
    "InsufficientCreditsError",
    "InvalidParameterError",
    "InvalidVideoNumberError",
    "LatencyHistogram",
    "MemoriesClient",
    "MemoriesError",
    "Outcome",
    "Outcomes",
    "OutputError",
    "PermissionDeniedError",
    "ProcessingFailedError",
    "RateGovernor",
    "RateLimitError",
    "RateStoreError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Segment",
    "Transcript",
    "TranscriptBatch",
    "TranscriptKind",
    "TransientAPIError",
    "TransportError",
    "Video",
    "VideoNotFoundError",
    "VideoNotReadyError",
    "VideoStatus",
    "WaitTimeoutError",
    "__version__",
    "export_transcripts",
    "read_id_file",
    "to_json_record",
    "to_srt",
    "to_text",
    "to_vtt",
]
