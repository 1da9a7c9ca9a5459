"""Answer bodies: JSON envelopes, transcripts, video records, HTML error pages, and their cache.

Bodies are rendered to bytes once and kept in a size-bounded LRU cache, so
serving a 600-segment transcript for the second time costs a dictionary lookup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import orjson

from memories_async._models import TranscriptKind
from memories_async.testing._library import FakeSegment, FakeVideo
from memories_async.testing._settings import TranscriptShape, WireFormat

JSON_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html"

OK_NULL = orjson.dumps(
    {"code": "0000", "msg": "success", "data": None, "success": True, "failed": False}
)
"""The success envelope with ``data: null``."""

VIDEO_BUCKET = "memories-fake-videos"


def ok(data: Any) -> bytes:
    """Render a success envelope around ``data``."""
    return orjson.dumps(
        {"code": "0000", "msg": "success", "data": data, "success": True, "failed": False}
    )


def error(code: str, msg: str, wire: WireFormat) -> bytes:
    """Render an error envelope: ``code`` and ``msg``, plus the flags if ``wire`` asks."""
    if wire.error_flags:
        return orjson.dumps(
            {"code": code, "msg": msg, "data": None, "success": False, "failed": True}
        )
    return orjson.dumps({"code": code, "msg": msg})


def transcript(
    video: FakeVideo, kind: TranscriptKind, segments: Sequence[FakeSegment], wire: WireFormat
) -> bytes:
    """Render the success envelope of one transcript in the configured shape."""
    data: dict[str, Any] = {"videoNo": video.video_no}
    if wire.transcript_shape is TranscriptShape.DOCUMENTED:
        data["transcription"] = [
            {"index": index, "text": s.text, "start": float(s.start), "end": float(s.end)}
            for index, s in enumerate(segments)
        ]
    else:
        data["transcriptions"] = [
            {"index": index, "content": s.text, "startTime": str(s.start), "endTime": str(s.end)}
            for index, s in enumerate(segments)
        ]
    if wire.extra_fields:
        data["createTime"] = str(video.create_time)
        data["video_bucket"] = VIDEO_BUCKET
        data["video_blob"] = f"{video.unique_id}/{video.video_no}/{kind.value}.json"
    return ok(data)


def video_record(video: FakeVideo, wire: WireFormat, *, metadata: bool = False) -> dict[str, Any]:
    """Return one video as ``list_videos`` (or, with ``metadata``, ``get_metadata``) spells it."""
    number: Any = str if wire.numbers_as_strings else int
    record: dict[str, Any] = {
        "video_no": video.video_no,
        "video_name": video.video_name,
        "status": video.status,
        "duration": number(video.duration),
        "size": number(video.size),
        "create_time": number(video.create_time),
        "cause": "null" if video.cause is None else video.cause,
    }
    if metadata:
        record["fps"] = number(video.fps)
        record["width"] = number(video.width)
        record["height"] = number(video.height)
    if wire.extra_fields:
        record["unique_id"] = video.unique_id
        record["tags"] = list(video.tags)
    return record


def video_page(
    videos: Sequence[FakeVideo], page: int, size: int, total: int, wire: WireFormat
) -> bytes:
    """Render one ``list_videos`` answer."""
    return ok(
        {
            "videos": [video_record(video, wire) for video in videos],
            "current_page": page,
            "page_size": size,
            "total_count": str(total) if wire.numbers_as_strings else total,
        }
    )


_REASONS = {
    401: "Authorization Required",
    403: "Forbidden",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def html_error(status: int) -> bytes:
    """Render the HTML error page a proxy in front of the service would send."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


HTML_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    b'<title>memories.ai</title>\n</head>\n<body>\n<div id="app">'
    b"<h1>We'll be right back</h1><p>The service is under maintenance. "
    b"Please try again later.</p></div>\n</body>\n</html>\n"
)
"""An HTML page served with HTTP 200, as a captive portal or maintenance page would."""


class BodyCache:
    """A least-recently-used cache of rendered bodies, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> bytes | None:
        """Return the cached body for ``key`` and mark it recently used, or ``None``."""
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Store a body, evicting the least recently used ones beyond ``max_bytes``."""
        if len(body) > self.max_bytes:
            return
        old = self._bodies.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._bodies[key] = body
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, evicted = self._bodies.popitem(last=False)
            self._bytes -= len(evicted)

    def clear(self) -> None:
        """Forget every body."""
        self._bodies.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._bodies)
