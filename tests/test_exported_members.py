"""The public namespace is deliberate: adding or removing a name is a visible change."""

from __future__ import annotations

import memories_async

EXPECTED = {
    "APIError",
    "ExportFormat",
    "ExportStats",
    "FailureRecord",
    "IdInputError",
    "OutputError",
    "export_transcripts",
    "read_id_file",
    "to_json_record",
    "to_srt",
    "to_text",
    "to_vtt",
    "BatchEvent",
    "BatchStats",
    "EventType",
    "Failed",
    "Fetched",
    "LatencyHistogram",
    "Outcome",
    "Outcomes",
    "TranscriptBatch",
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
    "ProcessingFailedError",
    "RateGovernor",
    "RateLimitError",
    "RateStoreError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Segment",
    "Transcript",
    "TranscriptKind",
    "TransientAPIError",
    "TransportError",
    "Video",
    "VideoNotFoundError",
    "VideoNotReadyError",
    "VideoStatus",
    "WaitTimeoutError",
    "__version__",
}


def test_all_is_locked() -> None:
    assert set(memories_async.__all__) == EXPECTED


def test_all_is_sorted_and_importable() -> None:
    assert memories_async.__all__ == sorted(memories_async.__all__)
    for name in memories_async.__all__:
        assert hasattr(memories_async, name), name


def test_public_classes_live_in_the_public_namespace() -> None:
    for name in memories_async.__all__:
        member = getattr(memories_async, name)
        if isinstance(member, type):
            assert member.__module__.startswith("memories_async"), name
            assert member.__doc__, f"{name} has no docstring"


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert memories_async.__version__ == version("memories-async")
