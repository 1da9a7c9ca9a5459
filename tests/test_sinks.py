"""Sinks: rendering, safe file names, the ledger's crash recovery, per-video files, failures."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memories_async import (
    AuthenticationError,
    DecodeError,
    HTTPStatusError,
    InvalidVideoNumberError,
    MemoriesError,
    RequestTimeoutError,
    Segment,
    Transcript,
    TranscriptKind,
    TransportError,
)
from memories_async._errors import api_error
from memories_async._formats import CSV_HEADER, ExportFormat, transcript_from_jsonl_record
from memories_async._ids import iter_id_lines
from memories_async._sinks import DirectorySink as DirSink
from memories_async._sinks import (
    FailureLog,
    OutputError,
    StdoutSink,
    StreamFileSink,
    default_failures_path,
    failure_code,
    file_name,
    open_sink,
    render,
    safe_stem,
)

VISUAL = TranscriptKind.VISUAL
AUDIO = TranscriptKind.AUDIO


def transcript(number: str, kind: TranscriptKind = VISUAL, segments: int = 2) -> Transcript:
    return Transcript(
        video_no=number,
        kind=kind,
        segments=tuple(
            Segment(index=i, start=float(i * 4), end=float(i * 4 + 3), text=f' text {i}, "q"')
            for i in range(segments)
        ),
    )


# -- rendering and names -------------------------------------------------------------------


def test_render_uses_the_format_renderers() -> None:
    t = transcript("VI1")
    assert json.loads(render(t, ExportFormat.JSONL))["video_no"] == "VI1"
    rows = list(csv.reader(io.StringIO(render(t, ExportFormat.CSV, header=True).decode())))
    assert rows[0] == list(CSV_HEADER)
    assert len(rows) == 3
    assert render(t, ExportFormat.CSV).decode().count("\r\n") == 2
    assert render(t, ExportFormat.SRT).startswith(b"1\n00:00:00,000 --> 00:00:03,000\n")
    assert render(t, ExportFormat.VTT).startswith(b"WEBVTT\n")
    assert render(t, ExportFormat.TXT) == b'text 0, "q"\ntext 1, "q"\n'


def test_render_raises_for_a_transcript_it_cannot_write() -> None:
    broken = Transcript("VI1", VISUAL, (Segment(0, float("nan"), 1.0, "x"),))
    with pytest.raises(ValueError, match="finite"):
        render(broken, ExportFormat.JSONL)


@pytest.mark.parametrize(
    ("number", "stem"),
    [
        ("VI606041694843813888", "VI606041694843813888"),
        ("PI-590000000000000001", "PI-590000000000000001"),
        ("a_b", "a_b"),
        ("../etc/passwd", "%2E%2E%2Fetc%2Fpasswd"),
        (".hidden", "%2Ehidden"),
        ("50%", "50%25"),
        ("é", "%C3%A9"),
        ("a\\b:c", "a%5Cb%3Ac"),
        ("CON", "%43ON"),
        ("nul", "%6Eul"),
        ("COM1", "%43OM1"),
    ],
)
def test_safe_stem(number: str, stem: str) -> None:
    assert safe_stem(number) == stem


def test_a_long_number_gets_a_cut_stem_with_a_hash() -> None:
    long_a, long_b = "A" * 300, "A" * 299 + "B"
    stem_a, stem_b = safe_stem(long_a), safe_stem(long_b)
    assert len(stem_a) == 120
    assert stem_a != stem_b
    assert "~" in stem_a


_SAFE = set(string.ascii_letters + string.digits + "-_%~")


@given(st.lists(st.text(min_size=1, max_size=150), min_size=2, max_size=2, unique=True))
def test_safe_stems_are_injective_and_safe(numbers: list[str]) -> None:
    a, b = (safe_stem(n) for n in numbers)
    assert a != b
    for stem in (a, b):
        assert set(stem) <= _SAFE
        assert not stem.startswith(".")
        assert len(stem) <= 120


def test_file_name() -> None:
    assert file_name("VI1", AUDIO, ExportFormat.SRT) == "VI1.audio.srt"
    assert file_name("x/y", VISUAL, ExportFormat.TXT) == "x%2Fy.visual.txt"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (api_error("0001", "video not found"), "0001"),
        (api_error("9999", "odd"), "9999"),
        (HTTPStatusError("bad gateway", status=502), "http_502"),
        (RequestTimeoutError("slow"), "timeout"),
        (TransportError("reset"), "transport"),
        (DecodeError("html"), "decode"),
        (InvalidVideoNumberError("blank"), "invalid_id"),
        (MemoriesError("other"), "MemoriesError"),
        (ValueError("nan"), "render"),
    ],
)
def test_failure_code(error: BaseException, code: str) -> None:
    assert failure_code(error) == code


def test_failure_code_of_an_account_error() -> None:
    assert failure_code(api_error("0401", "Authorization invalid")) == "0401"
    assert isinstance(api_error("0401", "x"), AuthenticationError)


# -- the stream file and its ledger --------------------------------------------------------


def read_jsonl(path: Path) -> list[Transcript]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [transcript_from_jsonl_record(json.loads(line)) for line in data.splitlines()]


def test_a_new_stream_file_gets_a_ledger(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.resumable
        assert sink.done_count == 0
        sink.commit(transcript("VI1"))
        sink.commit(transcript("VI1", AUDIO, segments=0))
        assert sink.is_done("VI1", VISUAL)
        assert sink.is_done("VI1", AUDIO)
        assert not sink.is_done("VI2", VISUAL)
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI1"]
    ledger = (tmp_path / "sub" / "out.jsonl.ledger").read_text().splitlines()
    assert ledger[0] == "memories-async export ledger 1 jsonl"
    size = out.stat().st_size
    first_end = len(render(transcript("VI1"), ExportFormat.JSONL))
    assert ledger[1:] == [f"{first_end}\tvisual\tVI1", f"{size}\taudio\tVI1"]


def test_reopening_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.done_count == 1
        assert sink.is_done("VI1", VISUAL)
        assert sink.recovered_bytes == 0
        sink.commit(transcript("VI2"))
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI2"]


def test_an_uncommitted_tail_keeps_its_whole_records_and_drops_a_torn_one(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    committed = out.stat().st_size
    whole = render(transcript("VI2"), ExportFormat.JSONL)
    torn = render(transcript("VI3"), ExportFormat.JSONL)[:17]
    with out.open("ab") as data:  # records written, then the process died before the commit
        data.write(whole + torn)
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert (sink.adopted_records, sink.recovered_bytes) == (1, 17)
        assert sink.is_done("VI2", VISUAL)
        assert not sink.is_done("VI3", VISUAL)
        assert out.stat().st_size == committed + len(whole)
        sink.commit(transcript("VI3"))
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI2", "VI3"]
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:  # the ledger says it all now
        assert (sink.adopted_records, sink.recovered_bytes, sink.done_count) == (0, 0, 3)


@pytest.mark.parametrize("cut", ["to the header", "by two records"])
def test_a_ledger_cut_short_loses_no_record(tmp_path: Path, cut: str) -> None:
    # The ledger cut back (by hand, a bad restore): the data's whole records are kept and
    # recorded again, none truncated, none fetched twice.
    out = tmp_path / "out.jsonl"
    ledger = tmp_path / "out.jsonl.ledger"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        for n in range(20):
            sink.commit(transcript(f"VI{n}"))
    data = out.read_bytes()
    lines = ledger.read_bytes().splitlines(keepends=True)
    ledger.write_bytes(b"".join(lines[:1] if cut == "to the header" else lines[:-2]))
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.adopted_records == (20 if cut == "to the header" else 2)
        assert sink.done_count == 20
        assert sink.recovered_bytes == 0
    assert out.read_bytes() == data
    assert ledger.read_bytes() == b"".join(lines)


def test_a_ledger_offset_off_a_record_boundary_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    ledger = tmp_path / "out.jsonl.ledger"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        for n in range(3):
            sink.commit(transcript(f"VI{n}"))
    lines = ledger.read_bytes().splitlines(keepends=True)
    end, rest = lines[-1].split(b"\t", 1)
    lines[-1] = b"%d\t%s" % (int(end) - 50, rest)  # 50 bytes short of the real end
    ledger.write_bytes(b"".join(lines))
    data, written = out.read_bytes(), ledger.read_bytes()
    with pytest.raises(OutputError, match=r"does not match .*nothing was changed"):
        StreamFileSink(str(out), ExportFormat.JSONL)
    assert (out.read_bytes(), ledger.read_bytes()) == (data, written)


def test_a_line_after_the_ledger_that_is_no_record_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    size = out.stat().st_size
    with out.open("ab") as data:
        data.write(b'{"written": "by something else"}\n')
    before = out.read_bytes()
    with pytest.raises(OutputError, match=rf"not an export record at byte {size}.*truncate -s"):
        StreamFileSink(str(out), ExportFormat.JSONL)
    assert out.read_bytes() == before


def test_zeros_a_power_loss_left_after_the_records_are_dropped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    whole = render(transcript("VI2"), ExportFormat.JSONL)
    with out.open("ab") as data:
        data.write(whole + b"\x00" * 300 + b"\n" + render(transcript("VI3"), ExportFormat.JSONL))
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.adopted_records == 1
        assert sink.is_done("VI2", VISUAL)
        assert not sink.is_done("VI3", VISUAL)  # after the zeros: fetched again
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI2"]


def test_a_torn_last_ledger_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    ledger = tmp_path / "out.jsonl.ledger"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
        sink.commit(transcript("VI2"))
    lines = ledger.read_bytes().splitlines(keepends=True)
    ledger.write_bytes(b"".join(lines[:-1]) + lines[-1][:5])  # torn in the middle
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.is_done("VI1", VISUAL)
        # Its record is whole in the data: recorded again, not dropped.
        assert (sink.adopted_records, sink.recovered_bytes) == (1, 0)
        assert sink.is_done("VI2", VISUAL)
        sink.commit(transcript("VI3"))
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI2", "VI3"]
    assert ledger.read_text().splitlines()[-1].endswith("\tvisual\tVI3")


def test_a_complete_but_garbled_last_ledger_line_is_dropped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    with (tmp_path / "out.jsonl.ledger").open("ab") as ledger:
        ledger.write(b"\x00\x00\x00\n")
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        assert sink.done_count == 1


@pytest.mark.parametrize(
    "bad",
    [
        b"garbage\n",
        b"12\tvisual\n",
        b"12\tsideways\tVI2\n",
        b"12\tvisual\tVI 2\n",
        b"1\tvisual\tVI2\n",
    ],
)
def test_a_corrupt_ledger_line_in_the_middle_stops(tmp_path: Path, bad: bytes) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    ledger = tmp_path / "out.jsonl.ledger"
    end = out.stat().st_size
    ledger.write_bytes(ledger.read_bytes() + bad + f"{end}\tvisual\tVI3\n".encode())
    with pytest.raises(OutputError, match="corrupt at line 3"):
        StreamFileSink(str(out), ExportFormat.JSONL)


def test_a_file_without_a_ledger_is_not_touched(tmp_path: Path) -> None:
    out = tmp_path / "mine.jsonl"
    out.write_text("precious\n")
    with pytest.raises(OutputError, match="not written by an export"):
        StreamFileSink(str(out), ExportFormat.JSONL)
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "mine.jsonl.ledger").exists()


def test_an_empty_file_without_a_ledger_is_used(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.touch()
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        sink.commit(transcript("VI1"))
    assert out.read_bytes().startswith(b"video_no,kind,")


def test_an_empty_ledger_beside_data_stops(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("x\n")
    (tmp_path / "out.jsonl.ledger").touch()
    with pytest.raises(OutputError, match=r"ledger .* is empty"):
        StreamFileSink(str(out), ExportFormat.JSONL)


def test_a_torn_ledger_header_without_data_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.ledger").write_bytes(b"memories-async exp")
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    assert (
        (tmp_path / "out.jsonl.ledger")
        .read_text()
        .startswith("memories-async export ledger 1 jsonl\n")
    )


def test_a_shortened_data_file_stops(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with StreamFileSink(str(out), ExportFormat.JSONL) as sink:
        sink.commit(transcript("VI1"))
    out.write_bytes(b"")
    with pytest.raises(OutputError, match="changed outside the export"):
        StreamFileSink(str(out), ExportFormat.JSONL)


def test_another_format_in_the_ledger_stops(tmp_path: Path) -> None:
    out = tmp_path / "out.data"
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        sink.commit(transcript("VI1"))
    with pytest.raises(OutputError, match="pass --format csv"):
        StreamFileSink(str(out), ExportFormat.JSONL)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"something else\n", "not an export ledger"),
        (b"memories-async export ledger 9 jsonl\n", "another version"),
    ],
)
def test_a_foreign_ledger_stops(tmp_path: Path, header: bytes, match: str) -> None:
    (tmp_path / "out.jsonl.ledger").write_bytes(header)
    with pytest.raises(OutputError, match=match):
        StreamFileSink(str(tmp_path / "out.jsonl"), ExportFormat.JSONL)


def test_a_directory_is_not_a_stream_file(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        StreamFileSink(str(tmp_path), ExportFormat.JSONL)


def test_an_impossible_path_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot open"):
        StreamFileSink(str(blocker / "out.jsonl"), ExportFormat.JSONL)


def test_a_second_export_to_the_same_file_is_refused(tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    with StreamFileSink(out, ExportFormat.JSONL):
        with pytest.raises(OutputError, match="another export is writing"):
            StreamFileSink(out, ExportFormat.JSONL)
    with StreamFileSink(out, ExportFormat.JSONL):
        pass


def test_csv_header_once_and_empty_transcripts(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        sink.commit(transcript("VI0", segments=0))
        sink.commit(transcript("VI1"))
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        assert sink.is_done("VI0", VISUAL)
        sink.commit(transcript("VI2", AUDIO))
    with out.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(CSV_HEADER)
    assert [row[:2] for row in rows[1:]] == [["VI1", "visual"]] * 2 + [["VI2", "audio"]] * 2


def test_a_closed_or_failed_sink_refuses_to_write(tmp_path: Path) -> None:
    sink = StreamFileSink(str(tmp_path / "out.jsonl"), ExportFormat.JSONL)
    sink.close()
    sink.close()
    with pytest.raises(OSError, match="closed"):
        sink.commit(transcript("VI1"))


@pytest.mark.parametrize(
    ("failing", "kept"),
    [
        # The data's fsync fails: the group's ledger lines are never written, and the next
        # open records the whole record it finds after them.
        pytest.param(1, ["VI1", "VI2", "VI4"], id="data fsync"),
        # The ledger's fsync fails after its write: the lines are there, the data durable.
        pytest.param(2, ["VI1", "VI2", "VI4"], id="ledger fsync"),
    ],
)
def test_a_commit_error_breaks_the_sink_and_the_next_open_repairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int, kept: list[str]
) -> None:
    out = tmp_path / "out.jsonl"
    sink = StreamFileSink(str(out), ExportFormat.JSONL)
    sink.commit(transcript("VI1"))
    sink.sync()
    real_fsync = os.fsync
    calls = 0

    def flaky_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    sink.commit(transcript("VI2"))
    assert sink.pending == 1
    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="No space"):
        sink.sync()
    with pytest.raises(OSError, match="failed earlier"):
        sink.commit(transcript("VI3"))
    sink.close()
    monkeypatch.setattr(os, "fsync", real_fsync)
    with StreamFileSink(str(out), ExportFormat.JSONL) as again:
        again.commit(transcript("VI4"))
    assert [t.video_no for t in read_jsonl(out)] == kept


def test_records_wait_for_sync_in_the_ledger_not_in_the_data(tmp_path: Path) -> None:
    # A kill -9 before the sync loses the group's ledger lines: the next open finds the
    # whole records they would have recorded, and records them.
    out = tmp_path / "out.jsonl"
    ledger = tmp_path / "out.jsonl.ledger"
    sink = StreamFileSink(str(out), ExportFormat.JSONL)
    sink.commit(transcript("VI1"))
    sink.sync()
    sink.commit(transcript("VI2"))
    assert sink.is_done("VI2", VISUAL)
    assert len(out.read_bytes().splitlines()) == 2  # written at once
    assert len(ledger.read_bytes().splitlines()) == 2  # the header and VI1
    os.close(sink._ledger_fd)  # as a crash would leave it: no close, no sync
    os.close(sink._data_fd)
    with StreamFileSink(str(out), ExportFormat.JSONL) as again:
        assert (again.adopted_records, again.recovered_bytes) == (1, 0)
        assert again.is_done("VI1", VISUAL)
        assert again.is_done("VI2", VISUAL)
    assert [t.video_no for t in read_jsonl(out)] == ["VI1", "VI2"]


def test_stream_sinks_refuse_per_video_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one file per video"):
        StreamFileSink(str(tmp_path / "x"), ExportFormat.SRT)
    with pytest.raises(ValueError, match="one file per video"):
        StdoutSink(io.BytesIO(), ExportFormat.VTT)
    with pytest.raises(ValueError, match="one stream"):
        DirSink(str(tmp_path), ExportFormat.JSONL)


# -- stdout ----------------------------------------------------------------------------------


def test_stdout_sink_writes_and_flushes() -> None:
    stream = io.BytesIO()
    sink = StdoutSink(stream, ExportFormat.CSV)
    assert not sink.resumable
    sink.commit(transcript("VI1"))
    sink.commit(transcript("VI2"))
    assert sink.is_done("VI2", VISUAL)
    assert sink.done_count == 2
    assert stream.getvalue().count(b"video_no,kind") == 1
    sink.close()


# -- per-video files -------------------------------------------------------------------------


def test_directory_sink_writes_one_file_per_video_and_kind(tmp_path: Path) -> None:
    out = tmp_path / "subs"
    with DirSink(str(out), ExportFormat.SRT) as sink:
        sink.commit(transcript("VI1"))
        sink.commit(transcript("VI1", AUDIO, segments=0))
        sink.commit(transcript("../x"))
        assert sink.is_done("VI1", AUDIO)
        assert sink.path_of("VI1", VISUAL) == str(out / "VI1.visual.srt")
    assert sorted(p.name for p in out.iterdir()) == [
        "%2E%2E%2Fx.visual.srt",
        "VI1.audio.srt",
        "VI1.visual.srt",
    ]
    assert (out / "VI1.audio.srt").read_bytes() == b""


def test_directory_sink_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with DirSink(str(tmp_path), ExportFormat.TXT) as sink:
            sink.commit(transcript("VI1"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "VI1.visual.txt").stat().st_mode) == 0o644


def test_directory_sink_resumes_and_removes_temp_files(tmp_path: Path) -> None:
    with DirSink(str(tmp_path), ExportFormat.VTT) as sink:
        sink.commit(transcript("VI1"))
    (tmp_path / ".memories-export-123-1.tmp").write_text("half a file")
    (tmp_path / "VI9.visual.srt").write_text("other format")
    (tmp_path / "notes.txt").write_text("not ours")
    with DirSink(str(tmp_path), ExportFormat.VTT) as sink:
        assert sink.removed_temp_files == 1
        assert sink.done_count == 1
        assert sink.is_done("VI1", VISUAL)
        assert not sink.is_done("VI9", VISUAL)
    assert not (tmp_path / ".memories-export-123-1.tmp").exists()
    assert (tmp_path / "notes.txt").exists()


def test_directory_sink_leaves_no_temp_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DirSink(str(tmp_path), ExportFormat.SRT) as sink:

        def broken_replace(src: str, dst: str) -> None:
            raise OSError(5, "I/O error")

        sink.commit(transcript("VI1"))
        assert sink.is_done("VI1", VISUAL)
        monkeypatch.setattr(os, "replace", broken_replace)
        with pytest.raises(OSError, match="I/O error"):
            sink.sync()
        assert not sink.is_done("VI1", VISUAL)
        with pytest.raises(OSError, match="failed earlier"):
            sink.commit(transcript("VI2"))
    assert list(tmp_path.iterdir()) == []


def test_directory_sink_files_appear_at_sync(tmp_path: Path) -> None:
    with DirSink(str(tmp_path), ExportFormat.SRT) as sink:
        sink.commit(transcript("VI1"))
        sink.commit(transcript("VI2"))
        assert sink.pending == 2
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
        sink.sync()
        assert sink.pending == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["VI1.visual.srt", "VI2.visual.srt"]
        sink.commit(transcript("VI3"))
    # Closing commits the rest.
    assert (tmp_path / "VI3.visual.srt").exists()


def test_directory_sink_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(OutputError, match="is a file"):
        DirSink(str(a_file), ExportFormat.SRT)
    with pytest.raises(OutputError, match="cannot use"):
        DirSink(str(a_file / "sub"), ExportFormat.SRT)
    with DirSink(str(tmp_path / "d"), ExportFormat.SRT):
        with pytest.raises(OutputError, match="another export"):
            DirSink(str(tmp_path / "d"), ExportFormat.TXT)
    sink = DirSink(str(tmp_path / "d"), ExportFormat.SRT)
    sink.close()
    with pytest.raises(OSError, match="closed"):
        sink.commit(transcript("VI1"))


def test_open_sink_and_default_failures_path(tmp_path: Path) -> None:
    stream = io.BytesIO()
    with open_sink(ExportFormat.JSONL, None, stdout=stream) as sink:
        assert isinstance(sink, StdoutSink)
    with open_sink(ExportFormat.CSV, "-", stdout=stream) as sink:
        assert isinstance(sink, StdoutSink)
    with pytest.raises(OutputError, match="standard output is closed"):
        open_sink(ExportFormat.CSV, "-")
    with pytest.raises(OutputError, match="pass --out DIR"):
        open_sink(ExportFormat.SRT, None)
    with open_sink(ExportFormat.TXT, str(tmp_path / "d")) as sink:
        assert isinstance(sink, DirSink)
    with open_sink(ExportFormat.JSONL, str(tmp_path / "o.jsonl")) as sink:
        assert isinstance(sink, StreamFileSink)
    assert default_failures_path(ExportFormat.JSONL, None) is None
    assert default_failures_path(ExportFormat.JSONL, "-") is None
    assert default_failures_path(ExportFormat.CSV, "o.csv") == "o.csv.failures.tsv"
    assert default_failures_path(ExportFormat.SRT, "d") == os.path.join("d", "failures.tsv")


# -- the failures file -----------------------------------------------------------------------


def test_failure_log_appends_runs_and_reads_back_as_ids(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "failures.tsv"
    log = FailureLog(str(path), redact=lambda text: text.replace("sk-secret", "***"))
    log.close()
    assert not path.exists()  # created at the first failure only
    log.record("VI1", AUDIO, "0001", 3, "API error 0001:\tvideo\nnot found sk-secret")
    log.record("VI2", VISUAL, "http_503", 5, "Service Unavailable")
    assert log.count == 2
    log.close()
    with path.open("ab") as file:
        file.write(b"VI3\tvis")  # a line left unfinished by something else
    second = FailureLog(str(path))
    second.record("VI4", VISUAL, "timeout", 5, "slow")
    second.close()
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# memories-async export ")
    assert lines[0].endswith("video_no\tkind\tcode\tattempts\tmessage")
    assert lines[1] == "VI1\taudio\t0001\t3\tAPI error 0001: video not found ***"
    assert lines[2] == "VI2\tvisual\thttp_503\t5\tService Unavailable"
    assert lines[3] == "VI3\tvis"
    assert lines[4].startswith("# memories-async export ")
    assert lines[5] == "VI4\tvisual\ttimeout\t5\tslow"
    with path.open("rb") as file:
        items = [item for _, item in iter_id_lines(file, str(path))]
    # Each failure names its pair; the line something else left unfinished, its number.
    assert items == [("VI1", AUDIO), ("VI2", VISUAL), "VI3", ("VI4", VISUAL)]


# -- power loss: anything after the last commit may be lost, at any byte ---------------------


def _committed_files(tmp_path: Path, fmt: ExportFormat) -> tuple[bytes, bytes, bytes, bytes]:
    """Data and ledger at the last commit (10 records), and once 3 more were committed."""
    out = tmp_path / f"model.{fmt.value}"
    with StreamFileSink(str(out), fmt) as sink:
        for n in range(10):
            sink.commit(transcript(f"VI{n}", segments=n % 3))
            if n == 4:
                sink.sync()
        sink.sync()
        data, ledger = out.read_bytes(), Path(f"{out}.ledger").read_bytes()
        for n in range(10, 13):
            sink.commit(transcript(f"VI{n}"))
    return data, ledger, out.read_bytes(), Path(f"{out}.ledger").read_bytes()


@pytest.mark.parametrize("fmt", [ExportFormat.JSONL, ExportFormat.CSV])
def test_a_power_loss_at_any_byte_after_the_last_commit_resumes_exactly_once(
    tmp_path: Path, fmt: ExportFormat
) -> None:
    data, ledger, data_after, ledger_after = _committed_files(tmp_path, fmt)
    cases = [(data_after[:end], ledger) for end in range(len(data), len(data_after) + 1)]
    # The next group's data made durable, its ledger lines torn anywhere.
    cases += [(data_after, ledger_after[:end]) for end in range(len(ledger), len(ledger_after))]
    out = tmp_path / f"out.{fmt.value}"
    for lost_data, lost_ledger in cases:
        out.write_bytes(lost_data)
        Path(f"{out}.ledger").write_bytes(lost_ledger)
        with StreamFileSink(str(out), fmt) as sink:
            missing = [n for n in range(13) if not sink.is_done(f"VI{n}", VISUAL)]
            assert set(range(10)).isdisjoint(missing)  # what was committed stays
            for n in missing:
                sink.commit(transcript(f"VI{n}"))
        if fmt is ExportFormat.JSONL:
            numbers = [t.video_no for t in read_jsonl(out)]
            assert sorted(numbers) == sorted(f"VI{n}" for n in range(13))
        else:
            rows = out.read_text().splitlines()
            assert rows[0].startswith("video_no,")
            assert rows.count(rows[0]) == 1  # one header, whatever was lost
        entries = Path(f"{out}.ledger").read_bytes().splitlines()[1:]
        assert sorted(e.split(b"\t")[2] for e in entries) == sorted(
            f"VI{n}".encode() for n in range(13)
        )


@pytest.mark.parametrize("damage", ["delete data", "delete ledger", "truncate data"])
def test_an_output_damaged_during_the_run_stops_the_next_commit(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "o.jsonl"
    sink = StreamFileSink(str(path), ExportFormat.JSONL)
    try:
        sink.commit(Transcript("VI1", TranscriptKind.VISUAL, (Segment(0, 0.0, 1.0, "a"),)))
        sink.sync()
        sink.commit(Transcript("VI2", TranscriptKind.VISUAL, (Segment(0, 0.0, 1.0, "b"),)))
        if damage == "delete data":
            path.unlink()
        elif damage == "delete ledger":
            Path(f"{path}.ledger").unlink()
        else:
            os.truncate(path, 10)
        with pytest.raises(OSError, match=r"deleted while the export ran|was cut to 10 bytes"):
            sink.sync()
        with pytest.raises(OSError, match="failed earlier"):
            sink.commit(Transcript("VI3", TranscriptKind.VISUAL))
    finally:
        sink.close()


def test_csv_rows_after_the_ledger_are_kept_but_the_last_transcript(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    ledger = tmp_path / "out.csv.ledger"
    texts = ["one", 'a "quoted",\nmulti-line text', "three"]
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        for n, text in enumerate(texts):
            segments = tuple(Segment(i, float(i), float(i + 1), f"{text} {i}") for i in range(3))
            sink.commit(Transcript(f"VI{n}", VISUAL, segments))
        sink.commit(Transcript("VI-empty", VISUAL))  # no rows: only its ledger line
    data = out.read_bytes()
    lines = ledger.read_bytes().splitlines(keepends=True)
    ledger.write_bytes(lines[0])  # cut back to its header
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        # VI0 and VI1 recorded again; VI2, the last, may have lost rows: cut, fetched again.
        assert sink.adopted_records == 2
        assert sink.is_done("VI0", VISUAL)
        assert sink.is_done("VI1", VISUAL)
        assert not sink.is_done("VI2", VISUAL)
        assert not sink.is_done("VI-empty", VISUAL)
    kept = out.read_bytes()
    assert data.startswith(kept)
    assert ledger.read_bytes() == b"".join(lines[:3])
    rows = list(csv.reader(io.StringIO(kept.decode(), newline="")))
    assert rows[0] == list(CSV_HEADER)
    assert {row[0] for row in rows[1:]} == {"VI0", "VI1"}


def test_a_torn_csv_row_inside_a_quoted_field_is_cut(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        sink.commit(transcript("VI1"))
    with out.open("ab") as data:
        data.write(b'VI2,visual,0,0.0,1.0,"open\r\nVI2,visual,1,1.0,2.0,b\r\n')
        data.write(b'VI3,visual,0,0.0,1.0,"still open\r\nno end')
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        assert not sink.is_done("VI3", VISUAL)
        assert sink.is_done("VI1", VISUAL)


def test_a_foreign_csv_row_after_the_ledger_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with StreamFileSink(str(out), ExportFormat.CSV) as sink:
        sink.commit(transcript("VI1"))
    with out.open("ab") as data:
        data.write(b"name,age\r\nbob,12\r\nVI2,visual,0,0.0,1.0,x\r\n")
    before = out.read_bytes()
    with pytest.raises(OutputError, match="not an export row"):
        StreamFileSink(str(out), ExportFormat.CSV)
    assert out.read_bytes() == before
