"""Where an export writes its transcripts, so that a crash never loses or duplicates one.

Layout
======

``jsonl`` and ``csv`` to a file ``OUT``:

* ``OUT`` — the data: one JSONL record per transcript, or CSV rows (header first);
* ``OUT.ledger`` — the commit log that makes a rerun resume;
* ``OUT.failures.tsv`` — what failed (the default of ``--failures``).

``jsonl`` and ``csv`` to standard output: the data only, no ledger, so no resume.

``srt``, ``vtt`` and ``txt`` to a directory ``DIR``:

* ``DIR/<video>.<kind>.<ext>`` — one file per video and kind (``VI60….visual.srt``), the
  video number made safe by :func:`safe_stem`;
* ``DIR/failures.tsv`` — what failed;
* ``DIR/.memories-export-<pid>-<n>.tmp`` — a file being written, never left behind by a
  finished run and removed by the next run after a crash.

Commit protocol
===============

A stream file only grows by whole records. Each transcript is appended to ``OUT`` in one
``write`` as it arrives. Records are then committed in groups (:meth:`Sink.sync`, which
the export calls off the event loop every :data:`COMMIT_EVERY` records or
:data:`COMMIT_INTERVAL` seconds, and when it ends): ``OUT`` is made durable (``fsync``),
and only then are the group's ledger lines appended and made durable, one
``<end offset><TAB><kind><TAB><video_no>`` per record, where the end offset is the size of
``OUT`` after that record. The ledger's first line names its version and format. On start,
the ledger is read, a torn last line (a crash in the middle of writing it) is dropped, and
the last recorded end offset is checked to end a record of ``OUT`` (a line end there; else
the export stops, changing nothing). What ``OUT`` holds after it was written but not
committed: in ``jsonl``, each whole line that is a record is recorded in the ledger then
(it is a complete transcript, so a ledger cut short loses nothing), and a half-written last
line, or the zeros a power loss leaves, is cut away; a whole line that is not a record
stops the export, changing nothing. In ``csv``, the rows of each transcript but the last
(whose rows may be incomplete) are recorded the same way, and the last is cut away. Cut
records' transcripts are fetched again. So whatever stops the
process (``kill -9``, a power loss, an OS crash), every transcript is in the output exactly
once or not at all, and what is lost is at most the group not yet committed: a fraction of a
second of fetching, done again by the next run. Since the ledger is written only after the
data it records is durable, a power loss never leaves a ledger line without its record.
Transcripts without segments are recorded too (a CSV transcript without rows adds a ledger
line and no byte).

A per-video file is written under a temporary name in the same directory; at the group's
commit each file is made durable, renamed over its final name (an atomic step), and the
directory is made durable once for the whole group. The final file is its own commit
record: a video and kind is done when its file exists, so no ledger is needed, and a second
record could only disagree with the file. A temporary file left by a crash is removed by
the next run, and its transcript fetched again. Every transcript gets its file, even an
empty one (an empty ``.srt`` or ``.txt``, a ``.vtt`` with only its header), so that the
directory alone says what was exported.

While an export runs it holds an exclusive lock (``flock``) on the ledger or the directory;
a second export to the same output stops at once instead of interleaving with the first.
Where the platform has no ``flock``, an output file or directory is refused with an
:class:`OutputError` that says so (never written unlocked).

Failures file
=============

One line per failed video and kind, TAB-separated and appended as failures happen::

    # memories-async export 2025-08-15T08:11:00Z: video_no<TAB>kind<TAB>code<TAB>attempts<TAB>...
    VI606041694843813888<TAB>audio<TAB>0001<TAB>3<TAB>API error 0001: video not found (...)

(the header's last column is ``message``).

Each run adds a ``#`` header before its first failure. The file is an id file: ``--ids`` reads
each line as its (video, kind) pair and skips the ``#`` lines, so ``export --ids
OUT.failures.tsv`` with the same ``--out`` retries exactly the pairs that failed, skipping
what has since been exported.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import stat
import string
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Generic, Self, TypeVar

import orjson

from ._errors import (
    APIError,
    DecodeError,
    HTTPStatusError,
    InvalidVideoNumberError,
    MemoriesError,
    ProcessingFailedError,
    RequestTimeoutError,
    TransportError,
    VideoNotFoundError,
    VideoNotReadyError,
    WaitTimeoutError,
)
from ._formats import (
    CSV_HEADER,
    ExportFormat,
    to_csv,
    to_jsonl_line,
    to_srt,
    to_txt,
    to_vtt,
    transcript_from_jsonl_record,
)
from ._ids import NumberSet
from ._models import Transcript, TranscriptKind
from ._protocol import is_video_no

LEDGER_SUFFIX = ".ledger"
"""Appended to a stream output's path to name its ledger."""

FAILURES_SUFFIX = ".failures.tsv"
"""Appended to a stream output's path to name its default failures file."""

DIRECTORY_FAILURES_NAME = "failures.tsv"
"""The default failures file inside a per-video output directory."""

TEMP_PREFIX = ".memories-export-"
TEMP_SUFFIX = ".tmp"

COMMIT_EVERY = 1000
"""Records an export commits together at most (see the commit protocol above)."""

COMMIT_INTERVAL = 0.2
"""Seconds an export lets a record wait for its group's commit at most. Two fsyncs per
group instead of two per record: at a few thousand records a second the commits cost
nothing, and a crash loses at most this much fetching (done again by the next run)."""

LEDGER_VERSION = 1
_LEDGER_MAGIC = b"memories-async export ledger "
_SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
_MAX_STEM = 120
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{n}" for n in range(1, 10)}
    | {f"LPT{n}" for n in range(1, 10)}
)
T = TypeVar("T")

FAILURE_COLUMNS = ("video_no", "kind", "code", "attempts", "message")
"""The columns of the failures file, in order."""


class OutputError(Exception):
    """The output cannot be used as asked; nothing was written to it.

    Raised when a sink opens: the file exists but no ledger records it, the ledger is
    corrupt or belongs to another format, another export holds the lock, or the path cannot
    be created. The message says what to do.
    """


def render(transcript: Transcript, fmt: ExportFormat, /, *, header: bool = False) -> bytes:
    """Return the bytes a transcript adds to an output of format ``fmt`` (UTF-8).

    ``header`` asks for the CSV header before the rows (the first record of a file).
    Raises :class:`ValueError` (or :class:`TypeError`) when the transcript cannot be
    rendered, for example a time that is not a finite number.
    """
    if fmt is ExportFormat.JSONL:
        return to_jsonl_line(transcript)
    if fmt is ExportFormat.CSV:
        text = to_csv(transcript, header=header)
    elif fmt is ExportFormat.SRT:
        text = to_srt(transcript)
    elif fmt is ExportFormat.VTT:
        text = to_vtt(transcript)
    else:
        text = to_txt(transcript)
    return text.encode("utf-8")


def safe_stem(video_no: str, /) -> str:
    """Turn an opaque video number into a file name stem that is safe on every system.

    Letters, digits, ``-`` and ``_`` are kept; every other character (``.``, ``/``, ``%``,
    non-ASCII...) is written as ``%XX`` per UTF-8 byte, so different numbers always give
    different stems and no stem is hidden, relative (``..``) or holds a separator. A stem that
    is a reserved Windows device name gets its first letter escaped. A stem longer than 120
    characters is cut and ended with ``~`` and 16 hex digits of the number's SHA-256.
    Names are case-sensitive: on a case-insensitive file system, numbers differing only in
    case would share a file (the service's numbers are upper-case letters and digits).
    """
    stem = "".join(
        c if c in _SAFE_CHARACTERS else "".join(f"%{b:02X}" for b in _utf8(c)) for c in video_no
    )
    if stem.upper() in _WINDOWS_RESERVED:
        stem = f"%{ord(stem[0]):02X}{stem[1:]}"
    if len(stem) > _MAX_STEM:
        digest = hashlib.sha256(_utf8(video_no)).hexdigest()[:16]
        stem = f"{stem[: _MAX_STEM - 17]}~{digest}"
    return stem


def file_name(video_no: str, kind: TranscriptKind, fmt: ExportFormat, /) -> str:
    """The name of the per-video file of a video and kind: ``<stem>.<kind>.<ext>``."""
    return f"{safe_stem(video_no)}.{kind.value}{fmt.extension}"


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of any string, lone surrogates included."""
    return text.encode("utf-8", "surrogatepass")


def failure_code(error: BaseException, /) -> str:
    """A short code for the failures file: the API code, ``http_503``, ``timeout``...

    ``render`` stands for a transcript that arrived but could not be written in the format;
    ``not_ready``, ``wait_timeout``, ``processing_failed`` and ``not_found`` for a video
    still being processed, still so when the wait ran out, whose processing failed, or
    that disappeared while waited for.
    """
    if isinstance(error, APIError):
        return error.code or "api"
    if isinstance(error, HTTPStatusError):
        return f"http_{error.status}"
    for cls, code in _FAILURE_CODES:
        if isinstance(error, cls):
            return code
    return type(error).__name__ if isinstance(error, MemoriesError) else "render"


_FAILURE_CODES: tuple[tuple[type[MemoriesError], str], ...] = (
    (WaitTimeoutError, "wait_timeout"),
    (VideoNotReadyError, "not_ready"),
    (ProcessingFailedError, "processing_failed"),
    (VideoNotFoundError, "not_found"),
    (RequestTimeoutError, "timeout"),
    (TransportError, "transport"),
    (DecodeError, "decode"),
    (InvalidVideoNumberError, "invalid_id"),
)


def one_line(text: str, /) -> str:
    """Collapse every run of whitespace (TABs and line breaks included) into one space."""
    return " ".join(text.split())


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many ``write`` calls it takes."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lock(fd: int, what: str) -> None:
    """Take an exclusive lock on ``fd`` or raise :class:`OutputError`; POSIX only.

    Where there is no ``flock`` (no :mod:`fcntl`), the output is refused rather than written
    unlocked: two exports to it would interleave their records unnoticed. The locks are on
    open descriptors (the ledger's, the directory's), which a lock-file library could only
    imitate with a second file beside the output, and the directory output needs POSIX
    anyway (it opens and syncs the directory itself).
    """
    try:
        import fcntl
    except ImportError:
        raise OutputError(
            f"cannot lock {what}: this platform has no file locking (flock), which an export"
            " to a file needs so that two exports never write it at once; write to standard"
            " output instead"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(
            f"another export is writing {what}; wait for it to end or choose another --out"
        ) from None


def _fsync_directory(path: str) -> None:
    """Make a directory's entries durable (a new file, a rename), if possible."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some systems cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - and some cannot sync them
        pass
    finally:
        os.close(fd)


def _close_fds(*fds: int | None) -> None:
    """Close file descriptors, ignoring errors."""
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Waiting(Generic[T]):
    """What waits for the next sync: added to by the event loop's thread, taken whole by
    the thread that syncs."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()

    def add(self, item: T, /) -> None:
        with self._lock:
            self._items.append(item)

    def take(self) -> list[T]:
        """Everything added so far, in order, leaving nothing."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def __len__(self) -> int:
        return len(self._items)


class Sink:
    """Where the transcripts of an export go; see the module documentation.

    Use it as a context manager (or call :meth:`close`). :meth:`is_done` says whether a
    video and kind is already in the output, :meth:`commit` adds one durably.
    """

    target: str
    """A description of the output, for messages (a path or ``"<stdout>"``)."""
    resumable: bool = True
    """Whether a rerun skips what this output holds."""
    format: ExportFormat
    recovered_bytes: int = 0
    """Bytes of an unfinished record dropped when the output was opened."""
    adopted_records: int = 0
    """Whole records written after the last commit of an earlier run, found in the data
    when the output was opened and recorded in the ledger (JSONL)."""
    removed_temp_files: int = 0
    """Temporary files of a crashed run removed when the output was opened."""

    def is_done(self, video_no: str, kind: TranscriptKind, /) -> bool:
        """Whether the output holds this video and kind."""
        raise NotImplementedError

    @property
    def done_count(self) -> int:
        """How many (video, kind) pairs the output holds."""
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Records written since the last :meth:`sync`, not yet durable."""
        return 0

    def commit(self, transcript: Transcript, /) -> None:
        """Add a transcript to the output, or raise leaving it as it was.

        It is durable once :meth:`sync` returns; :meth:`is_done` is true for it at once.
        Raises :class:`ValueError`/:class:`TypeError` if the transcript cannot be rendered
        (nothing is written) and :class:`OSError` if writing fails (the sink is then
        unusable; the next run repairs the output).
        """
        data = render(transcript, self.format, header=self._at_start())
        self.commit_rendered(transcript.video_no, transcript.kind, data)

    def commit_rendered(self, video_no: str, kind: TranscriptKind, data: bytes, /) -> None:
        """:meth:`commit` of a transcript already rendered in the sink's format (what
        :func:`render` returns for it, a CSV header included when due)."""
        raise NotImplementedError

    def _at_start(self) -> bool:
        """Whether the next record is the first of its file (a CSV file has its header)."""
        return False

    def sync(self) -> None:
        """Make every record committed so far durable (blocking: call it off the event loop).

        Safe to call from a worker thread while :meth:`commit` goes on in the event loop's.
        Raises :class:`OSError` if that fails (the sink is then unusable).
        """

    def close(self) -> None:
        """Sync what was committed, then release the output and its lock; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StreamFileSink(Sink):
    """A ``jsonl`` or ``csv`` file with its ledger beside it; resumable and crash-safe.

    Opening it recovers from any earlier crash (see the module documentation) and takes the
    lock. Raises :class:`OutputError` when the file exists without a ledger, when the ledger
    is corrupt, names another format or records more bytes than the file holds, when another
    export holds the lock, or when the files cannot be opened.
    """

    def __init__(self, path: str, fmt: ExportFormat) -> None:
        if fmt.per_video:
            raise ValueError(f"{fmt.value} writes one file per video; use DirectorySink")
        self.path = path
        self.target = path
        self.format = fmt
        self.ledger_path = path + LEDGER_SUFFIX
        self._done = {kind: NumberSet() for kind in TranscriptKind}
        self._data_fd: int | None = None
        self._ledger_fd: int | None = None
        self._offset = 0
        self._broken = False
        self._entries = _Waiting[bytes]()
        self._sync_lock = threading.RLock()
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise OutputError(f"cannot open {exc.filename or path}: {exc.strerror}") from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Take the lock and recover from an earlier crash; see the class documentation."""
        path, ledger_path = self.path, self.ledger_path
        if os.path.isdir(path):
            raise OutputError(
                f"{path} is a directory; {self.format.value} writes one file: pass a file name"
            )
        parent = os.path.dirname(path) or "."
        os.makedirs(parent, exist_ok=True)
        had_ledger = os.path.exists(ledger_path)
        if not had_ledger and _size(path) > 0:
            raise OutputError(
                f"{path} exists and was not written by an export (no {ledger_path});"
                " choose another --out or remove it"
            )
        self._ledger_fd = os.open(ledger_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        _lock(self._ledger_fd, path)
        committed, good_end, has_header = self._read_ledger()
        if not has_header:
            if _size(path) > 0:
                raise OutputError(
                    f"{path} exists but its ledger {ledger_path} is empty; choose another"
                    " --out or remove both files"
                )
            os.ftruncate(self._ledger_fd, 0)
            header = b"%s%d %s\n" % (_LEDGER_MAGIC, LEDGER_VERSION, self.format.value.encode())
            _write_all(self._ledger_fd, header)
            os.fsync(self._ledger_fd)
            _fsync_directory(parent)
        torn = has_header and os.fstat(self._ledger_fd).st_size > good_end
        self._data_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        size = os.fstat(self._data_fd).st_size
        if size < committed:
            raise OutputError(
                f"{path} holds {size} bytes but its ledger records {committed}: it was changed"
                f" outside the export; to start over, remove {path} and {ledger_path}"
            )
        self._check_boundary(committed)
        if torn:
            # A torn last line: drop it, or the next entry would be glued to it.
            os.ftruncate(self._ledger_fd, good_end)
            os.fsync(self._ledger_fd)
        if size > committed:
            adopt = self._adopt if self.format is ExportFormat.JSONL else self._adopt_csv
            committed = adopt(committed)
        if size > committed:
            os.ftruncate(self._data_fd, committed)
            os.fsync(self._data_fd)
            self.recovered_bytes = size - committed
        self._offset = committed

    def _check_boundary(self, committed: int) -> None:
        """Refuse a ledger whose last offset is not the end of a record of the data (a
        ledger changed, or data written over, outside the export): resuming would truncate
        or count done a torn record. Nothing has been changed when this raises."""
        if committed == 0 or self._data_fd is None:
            return
        if os.pread(self._data_fd, 1, committed - 1) != b"\n":
            raise OutputError(
                f"{self.ledger_path} does not match {self.path}: its last record does not end"
                f" at byte {committed}, where the ledger says; nothing was changed. Move both"
                " files aside and export again into a new --out"
            )

    def _adopt(self, committed: int) -> int:
        """Record in the ledger the whole JSON lines written after ``committed`` and never
        recorded (a crash between the write and the group's commit, or a ledger cut
        short): they are complete transcripts, kept rather than fetched again. Returns
        the offset where the data stops being whole records (a torn last line, or the
        zeros a power loss leaves, dropped after). A complete line that is not a record
        stops the export: the data was changed outside it, and nothing is removed without
        the user."""
        entries: list[bytes] = []
        offset = committed
        for line in self._whole_lines(committed):
            if not line[:-1].strip(b"\x00"):
                break  # zeros where a power loss left blocks unwritten: nothing whole after
            number, kind = self._record_of(line[:-1], offset)
            offset += len(line)
            entries.append(f"{offset}\t{kind.value}\t{number}\n".encode())
        # Written only once every line is known good: a refusal changes nothing.
        self._record_adopted(entries)
        return offset

    def _record_adopted(self, entries: list[bytes]) -> None:
        """Append the ledger lines of adopted records, durably, and count them done."""
        if not entries:
            return
        assert self._data_fd is not None
        assert self._ledger_fd is not None
        os.fsync(self._data_fd)
        _write_all(self._ledger_fd, b"".join(entries))
        os.fsync(self._ledger_fd)
        for entry in entries:
            _end, kind, number = entry[:-1].decode().split("\t")
            self._done[_LEDGER_KINDS[kind.encode()]].add(number)
        self.adopted_records = len(entries)

    def _whole_lines(self, committed: int) -> Iterator[bytes]:
        """The whole lines of the data after ``committed``, line ends included (a torn last
        line is not one)."""
        assert self._data_fd is not None
        with open(os.dup(self._data_fd), "rb") as data:
            data.seek(committed)
            for line in data:
                if not line.endswith(b"\n"):
                    return
                yield line

    def _adopt_csv(self, committed: int) -> int:
        """:meth:`_adopt` for CSV: the rows after ``committed``, grouped by (video, kind) as
        they come, are the transcripts written after the last commit; every group but the
        last is recorded (the last may lack rows: it is cut away and fetched again, so at
        most one transcript is). A row that is not an export row stops the export."""
        entries: list[bytes] = []
        offset = committed
        previous: tuple[str, TranscriptKind, int] | None = None
        for number, kind, end in self._csv_groups(committed):
            if previous is not None:
                entries.append(f"{previous[2]}\t{previous[1].value}\t{previous[0]}\n".encode())
                offset = previous[2]
            previous = (number, kind, end)
        self._record_adopted(entries)
        return offset

    def _csv_groups(self, committed: int) -> Iterator[tuple[str, TranscriptKind, int]]:
        """The (video, kind, end offset) of each run of rows of one transcript after
        ``committed``; a torn last row ends them."""
        consumed = committed

        def lines() -> Iterator[str]:
            nonlocal consumed
            for raw in self._whole_lines(committed):
                consumed += len(raw)
                yield raw.decode("utf-8", "replace")

        def rows() -> Iterator[tuple[list[str], int]]:
            # Each row with the offset just after it (the reader reads no further).
            for row in csv.reader(lines()):
                yield row, consumed

        group: tuple[str, TranscriptKind] | None = None
        end = committed
        for (row, row_end), last in _with_last(rows()):
            if committed == 0 and end == 0 and tuple(row) == CSV_HEADER:
                end = row_end
                continue
            try:
                key = self._csv_key(row, end)
            except OutputError:
                if last:
                    break  # a row cut by the end of the data: part of the last transcript
                raise
            if group is not None and key != group:
                yield (*group, end)
            group, end = key, row_end
        if group is not None:
            yield (*group, end)

    def _csv_key(self, row: list[str], offset: int) -> tuple[str, TranscriptKind]:
        """The (video, kind) of an export CSV row, or refuse."""
        kind = _KINDS_BY_VALUE.get(row[1]) if len(row) == len(CSV_HEADER) else None
        if kind is None or not is_video_no(row[0]):
            raise OutputError(
                f"{self.path} holds a row that is not an export row at byte {offset}, after"
                f" what its ledger records: it was changed outside the export; nothing was"
                f" changed. Keep its first {offset} bytes (truncate -s {offset} {self.path})"
                " to resume"
            )
        return row[0], kind

    def _record_of(self, line: bytes, offset: int) -> tuple[str, TranscriptKind]:
        """The (video number, kind) of a whole JSON line of the data, or refuse."""
        try:
            record = orjson.loads(line)
            transcript = transcript_from_jsonl_record(record)
            number = transcript.video_no
            if not is_video_no(number):
                raise ValueError(number)  # noqa: TRY301 - one refusal for every bad line
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            raise OutputError(
                f"{self.path} holds a line that is not an export record at byte {offset},"
                f" after what its ledger records: it was changed outside the export; nothing"
                f" was changed. Keep its first {offset} bytes (truncate -s {offset}"
                f" {self.path}) to resume"
            ) from None
        return transcript.video_no, transcript.kind

    def _read_ledger(self) -> tuple[int, int, bool]:
        """Read the ledger: return the committed offset, where its good part ends, header?"""
        committed = 0
        with open(self.ledger_path, "rb") as ledger:
            first = ledger.readline()
            if not first.endswith(b"\n"):
                return 0, 0, False
            self._check_header(first)
            good_end = len(first)
            bad_line: int | None = None
            for line_no, raw in enumerate(ledger, start=2):
                entry = _parse_ledger_entry(raw)
                if bad_line is not None or (entry is not None and entry[0] < committed):
                    raise OutputError(
                        f"{self.ledger_path} is corrupt at line {bad_line or line_no}; to start"
                        f" over, remove {self.path} and {self.ledger_path}"
                    )
                if entry is None:
                    bad_line = line_no  # tolerated only as the last line
                    continue
                committed, kind, video_no = entry
                self._done[kind].load(video_no)
                good_end += len(raw)
        return committed, good_end, True

    def _check_header(self, line: bytes) -> None:
        """Check the ledger's first line: ours, this version, this format."""
        if not line.startswith(_LEDGER_MAGIC):
            raise OutputError(f"{self.ledger_path} is not an export ledger; choose another --out")
        version, _, fmt = line[len(_LEDGER_MAGIC) :].strip().partition(b" ")
        if version != str(LEDGER_VERSION).encode():
            raise OutputError(
                f"{self.ledger_path} was written by another version of memories-async"
                f" (ledger version {version.decode(errors='replace')})"
            )
        if fmt != self.format.value.encode():
            written = fmt.decode(errors="replace")
            raise OutputError(
                f"{self.path} holds {written} records: pass --format {written} to resume it,"
                " or choose another --out"
            )

    def is_done(self, video_no: str, kind: TranscriptKind, /) -> bool:
        """Whether the ledger records this video and kind."""
        return video_no in self._done[kind]

    @property
    def pending(self) -> int:
        """Records appended whose ledger lines wait for the next :meth:`sync`."""
        return len(self._entries)

    @property
    def done_count(self) -> int:
        """How many (video, kind) pairs the ledger records."""
        return sum(len(numbers) for numbers in self._done.values())

    def _at_start(self) -> bool:
        return self._offset == 0

    def commit_rendered(self, video_no: str, kind: TranscriptKind, data: bytes, /) -> None:
        """Append the record in one write; its ledger line waits for :meth:`sync`."""
        if self._broken or self._data_fd is None or self._ledger_fd is None:
            raise OSError(f"{self.path} is closed or failed earlier; rerun to resume")
        end = self._offset + len(data)
        entry = f"{end}\t{kind.value}\t{video_no}\n".encode()
        try:
            if data:
                _write_all(self._data_fd, data)
        except BaseException:
            self._broken = True
            raise
        self._offset = end
        self._entries.add(entry)
        self._done[kind].add(video_no)

    def sync(self) -> None:
        """fsync the data, then append the ledger lines of the records it holds and fsync."""
        with self._sync_lock:
            entries = self._entries.take()
            if not entries:
                return
            data_fd, ledger_fd = self._data_fd, self._ledger_fd
            if self._broken or data_fd is None or ledger_fd is None:
                raise OSError(f"{self.path} is closed or failed earlier; rerun to resume")
            try:
                self._check_intact(data_fd, ledger_fd, int(entries[-1].split(b"\t", 1)[0]))
                # Every record of ``entries`` was written before they were taken.
                os.fsync(data_fd)
                _write_all(ledger_fd, b"".join(entries))
                os.fsync(ledger_fd)
            except BaseException:
                self._broken = True
                raise

    def _check_intact(self, data_fd: int, ledger_fd: int, end: int) -> None:
        """Raise :class:`OSError` if the data or the ledger was deleted, or the data cut
        short of ``end``, by something else while the export ran (one ``fstat`` each)."""
        data, ledger = os.fstat(data_fd), os.fstat(ledger_fd)
        for stat_result, path in ((data, self.path), (ledger, self.ledger_path)):
            if stat_result.st_nlink == 0:
                raise OSError(f"{path} was deleted while the export ran; nothing more is written")
        if data.st_size < end:
            raise OSError(
                f"{self.path} was cut to {data.st_size} bytes while the export ran (its records"
                f" end at {end}); nothing more is written"
            )

    def close(self) -> None:
        """Commit what is pending, then close both files, releasing the lock; idempotent."""
        with self._sync_lock:
            if not self._broken and self._data_fd is not None:
                with contextlib.suppress(OSError):  # then the next run fetches them again
                    self.sync()
            data_fd, ledger_fd = self._data_fd, self._ledger_fd
            self._data_fd = self._ledger_fd = None
            _close_fds(data_fd, ledger_fd)


def _with_last(items: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Each item with whether it is the last; a CSV row left unfinished by the end of the
    data (inside a quoted field) ends them."""
    try:
        item = next(items)
    except (StopIteration, csv.Error):
        return
    while True:
        try:
            following = next(items)
        except (StopIteration, csv.Error):
            yield item, True
            return
        yield item, False
        item = following


def _size(path: str) -> int:
    """The size of a file in bytes; 0 if it does not exist."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _parse_ledger_entry(raw: bytes) -> tuple[int, TranscriptKind, str] | None:
    """Parse ``<offset>\\t<kind>\\t<video_no>\\n``; ``None`` if torn or malformed."""
    if not raw.endswith(b"\n"):
        return None
    parts = raw[:-1].split(b"\t")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    kind = _LEDGER_KINDS.get(parts[1])
    try:
        number = parts[2].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if kind is None or not is_video_no(number):
        return None
    return int(parts[0]), kind, number


_LEDGER_KINDS = {kind.value.encode(): kind for kind in TranscriptKind}
_KINDS_BY_VALUE = {kind.value: kind for kind in TranscriptKind}


class StdoutSink(Sink):
    """A ``jsonl`` or ``csv`` stream to standard output: flushed per record, not resumable.

    Only the pairs written by this run count as done.
    """

    resumable = False

    def __init__(self, stream: IO[bytes], fmt: ExportFormat) -> None:
        if fmt.per_video:
            raise ValueError(f"{fmt.value} writes one file per video; it cannot go to stdout")
        self.target = "<stdout>"
        self.format = fmt
        self._stream = stream
        self._written = 0
        self._done = {kind: NumberSet() for kind in TranscriptKind}

    def is_done(self, video_no: str, kind: TranscriptKind, /) -> bool:
        """Whether this run wrote this video and kind."""
        return video_no in self._done[kind]

    @property
    def done_count(self) -> int:
        """How many pairs this run wrote."""
        return sum(len(numbers) for numbers in self._done.values())

    def _at_start(self) -> bool:
        return self._written == 0

    def commit_rendered(self, video_no: str, kind: TranscriptKind, data: bytes, /) -> None:
        """Write the record and flush."""
        self._stream.write(data)
        self._stream.flush()
        self._written += len(data)
        self._done[kind].add(video_no)


class DirectorySink(Sink):
    """One ``srt``, ``vtt`` or ``txt`` file per video and kind in a directory; resumable.

    Opening it creates the directory if needed, takes the lock, removes the temporary files
    of a crashed run and lists the files already there. Raises :class:`OutputError` when the
    path is a file, another export holds the lock, or the directory cannot be used.
    """

    def __init__(self, directory: str, fmt: ExportFormat) -> None:
        if not fmt.per_video:
            raise ValueError(f"{fmt.value} writes one stream; use StreamFileSink")
        self.directory = directory
        self.target = directory
        self.format = fmt
        self._names: set[str] = set()
        self._dir_fd: int | None = None
        self._counter = 0
        self._staged = _Waiting[tuple[str, str]]()
        """(temporary, final) paths of the files written since the last sync."""
        self._sync_lock = threading.RLock()
        self._broken = False
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise OutputError(
                f"cannot use {exc.filename or directory} as the output directory: {exc.strerror}"
            ) from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Take the lock and recover from an earlier crash; see the class documentation."""
        directory = self.directory
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise OutputError(
                f"{directory} is a file; {self.format.value} writes one file per video:"
                " pass a directory"
            )
        os.makedirs(directory, exist_ok=True)
        self._dir_fd = os.open(directory, os.O_RDONLY)
        _lock(self._dir_fd, directory)
        extension = self.format.extension
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                    os.unlink(entry.path)
                    self.removed_temp_files += 1
                elif name.endswith(extension):
                    self._names.add(name)

    def path_of(self, video_no: str, kind: TranscriptKind, /) -> str:
        """The final path of the file of a video and kind."""
        return os.path.join(self.directory, file_name(video_no, kind, self.format))

    def is_done(self, video_no: str, kind: TranscriptKind, /) -> bool:
        """Whether the file of this video and kind exists."""
        return file_name(video_no, kind, self.format) in self._names

    @property
    def pending(self) -> int:
        """Files written that wait for the next :meth:`sync` to be renamed into place."""
        return len(self._staged)

    @property
    def done_count(self) -> int:
        """How many files of this format the directory holds."""
        return len(self._names)

    def commit_rendered(self, video_no: str, kind: TranscriptKind, data: bytes, /) -> None:
        """Write a temporary file; :meth:`sync` makes it durable and renames it into place."""
        if self._broken or self._dir_fd is None:
            raise OSError(f"{self.directory} is closed or failed earlier; rerun to resume")
        name = file_name(video_no, kind, self.format)
        self._counter += 1
        temp = os.path.join(
            self.directory, f"{TEMP_PREFIX}{os.getpid()}-{self._counter}{TEMP_SUFFIX}"
        )
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._staged.add((temp, os.path.join(self.directory, name)))
        self._names.add(name)

    def sync(self) -> None:
        """fsync each file written since the last sync, rename it, then fsync the directory."""
        with self._sync_lock:
            staged = self._staged.take()
            if not staged:
                return
            if self._broken or self._dir_fd is None:
                raise OSError(f"{self.directory} is closed or failed earlier; rerun to resume")
            renamed = 0
            try:
                for temp, final in staged:
                    fd = os.open(temp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.replace(temp, final)
                    renamed += 1
                os.fsync(self._dir_fd)
            except BaseException:
                # The files not in place are not exported: the next run fetches them.
                self._broken = True
                for temp, final in staged[renamed:]:
                    self._names.discard(os.path.basename(final))
                    with contextlib.suppress(OSError):
                        os.unlink(temp)
                raise

    def close(self) -> None:
        """Commit what is pending, then release the directory and its lock; idempotent."""
        with self._sync_lock:
            if self._dir_fd is not None and not self._broken:
                with contextlib.suppress(OSError):  # then the next run fetches them again
                    self.sync()
            fd, self._dir_fd = self._dir_fd, None
            _close_fds(fd)


def open_sink(fmt: ExportFormat, out: str | None, /, *, stdout: IO[bytes] | None = None) -> Sink:
    """Open the sink for a format and an ``--out`` value (``None`` or ``"-"``: stdout).

    Raises :class:`OutputError` as the sink classes do, and when a per-video format is asked
    to write to stdout.
    """
    if fmt.per_video:
        if out is None or out == "-":
            raise OutputError(f"--format {fmt.value} writes one file per video: pass --out DIR")
        return DirectorySink(out, fmt)
    if out is None or out == "-":
        if stdout is None:
            raise OutputError("standard output is closed: pass --out FILE")
        return StdoutSink(stdout, fmt)
    return StreamFileSink(out, fmt)


def default_failures_path(fmt: ExportFormat, out: str | None, /) -> str | None:
    """Where failures go unless ``--failures`` says: beside or inside the output, or nowhere."""
    if out is None or out == "-":
        return None
    if fmt.per_video:
        return os.path.join(out, DIRECTORY_FAILURES_NAME)
    return out + FAILURES_SUFFIX


def check_output(fmt: ExportFormat, out: str | None, failures: str | None, /) -> None:
    """Refuse, before anything is written, an output or a failures file that cannot work.

    A resumable ``jsonl`` or ``csv`` output and its ledger must be regular files (a FIFO or
    ``/dev/null`` cannot be made durable, let alone resumed; ``out`` ``None`` or ``"-"`` is
    standard output). The failures file must not be the output or its ledger (its lines
    would break the records and their offsets), must be a regular file if it exists, and
    must be writable where it is to be created. Raises :class:`OutputError` saying which.
    """
    stream = out is not None and out != "-" and not fmt.per_video
    if stream:
        assert out is not None
        for path in (out, out + LEDGER_SUFFIX):
            _require_regular(
                path,
                "an export resumes only into a regular file (--out - writes to standard output)",
            )
    if failures is None:
        return
    if stream:
        assert out is not None
        for path, what in ((out, "output"), (out + LEDGER_SUFFIX, "output's ledger")):
            if same_path(failures, path):
                raise OutputError(
                    f"the failures file {failures} is the {what} {path}: choose another"
                    " failures file"
                )
    _require_regular(failures, "failures are appended to a regular file")
    if os.path.exists(failures):
        if not os.access(failures, os.W_OK):
            raise OutputError(f"cannot write the failures file {failures}: permission denied")
        return
    parent = os.path.dirname(os.path.abspath(failures))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the failures file {failures}: {parent} is not writable")


def _require_regular(path: str, why: str) -> None:
    """Raise :class:`OutputError` if ``path`` exists and is not a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise OutputError(f"cannot use {path}: a part of its path is a file") from None
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path} is {_file_kind(mode)}, not a regular file: {why}")


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"  # pragma: no cover - every kind of file is listed above


def same_path(a: str, b: str, /) -> bool:
    """Whether two paths name the same file: the same inode when both exist (symlinks and
    hard links included), else the same path once symlinks and ``.``/``..`` are resolved."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class FailureLog:
    """The failures file: appended one line per failure, created at the first one.

    Each run writes a ``#`` header line before its first failure; each failure is one
    ``write`` so a crash never leaves half a line, made durable with the export's group
    commits (:meth:`sync`) and when closed. ``redact`` is applied to messages (the
    export passes one that hides the API key). Raises :class:`OSError` when the file cannot
    be written.
    """

    def __init__(self, path: str, /, *, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.count = 0
        """Failures recorded by this run."""
        self._redact = redact
        self._fd: int | None = None
        self._dirty = False

    def record(
        self, video_no: str, kind: TranscriptKind, code: str, attempts: int, message: str
    ) -> None:
        """Append one failure."""
        if self._fd is None:
            self._fd = self._open()
        text = one_line(message)
        if self._redact is not None:
            text = self._redact(text)
        number = video_no
        if not is_video_no(video_no):
            # Not a video number (a TAB, a line break, a NUL...): as it is, it would break
            # the line, or the retry of the file as --ids. A comment keeps it for the eye.
            number = f"# not a video number: {video_no!r}"
        line = f"{number}\t{kind.value}\t{one_line(code)}\t{attempts}\t{text}\n"
        _write_all(self._fd, line.encode("utf-8", "replace"))
        self.count += 1
        self._dirty = True

    def sync(self) -> None:
        """Make the failures recorded so far durable (blocking: off the event loop)."""
        fd = self._fd
        if fd is not None and self._dirty:
            self._dirty = False
            os.fsync(fd)

    def _open(self) -> int:
        """Take the lock and recover from an earlier crash; see the class documentation."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            size = os.fstat(fd).st_size
            glue = b""
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    glue = b"\n"  # never append to a line left unfinished
            started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            header = f"# memories-async export {started}: {chr(9).join(FAILURE_COLUMNS)}\n"
            _write_all(fd, glue + header.encode())
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        """Make the failures durable, then close the file; idempotent."""
        with contextlib.suppress(OSError):
            self.sync()
        fd, self._fd = self._fd, None
        _close_fds(fd)
