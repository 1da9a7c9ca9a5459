"""The fake library: deterministic generation, realistic variety, explicit videos."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from memories_async.testing import FakeLibrary, FakeSegment, FakeVideo, Generated


@pytest.fixture(scope="module")
def library() -> FakeLibrary:
    return FakeLibrary.generate(1000, seed=0, unique_ids=("default", "Tenant-B"), public=20)


def test_same_seed_same_library() -> None:
    first = FakeLibrary.generate(200, seed=5, public=3)
    again = FakeLibrary.generate(200, seed=5, public=3)
    other = FakeLibrary.generate(200, seed=6, public=3)

    assert list(first) == list(again)
    assert [v.segments("visual") for v in first] == [v.segments("visual") for v in again]
    assert {v.video_no for v in first}.isdisjoint({v.video_no for v in other})


def test_numbers_look_real_and_are_unique(library: FakeLibrary) -> None:
    private = library.videos()
    public = library.public_videos()

    assert len(private) == 1000
    assert len(public) == 20
    assert all(re.fullmatch(r"VI\d{18}", v.video_no) for v in private)
    assert all(re.fullmatch(r"PI-\d{18}", v.video_no) for v in public)
    assert len(library) == len({v.video_no for v in library}) == 1020


def test_statuses_are_mostly_parse_with_every_failure_word(library: FakeLibrary) -> None:
    statuses = Counter(v.status for v in library.videos())

    assert set(statuses) == {"PARSE", "UNPARSE", "PARSE_ERROR", "FAIL", "FAILED"}
    assert statuses["PARSE"] > 800
    failed = [v for v in library.videos() if v.status not in ("PARSE", "UNPARSE")]
    assert all(v.cause for v in failed)
    assert all(v.cause is None for v in library.videos(status="PARSE"))


def test_videos_spread_over_namespaces(library: FakeLibrary) -> None:
    assert library.unique_ids() == ["Tenant-B", "default"]
    assert len(library.videos("default")) == len(library.videos("Tenant-B")) == 500
    assert library.videos("tenant-b") == []


def test_listings_are_newest_first(library: FakeLibrary) -> None:
    listing = library.videos("default")

    assert [v.create_time for v in listing] == sorted(
        (v.create_time for v in listing), reverse=True
    )


def test_some_videos_have_no_speech(library: FakeLibrary) -> None:
    silent = [v for v in library if v.audio is None]

    assert 50 < len(silent) < 250
    assert all(v.segments("audio") is None for v in silent[:5])
    assert all(isinstance(v.visual, Generated) for v in library)


def test_generated_transcripts_are_well_formed_and_varied(library: FakeLibrary) -> None:
    transcripts = [
        segments
        for video in library.videos()[:300]
        for kind in ("visual", "audio")
        if (segments := video.segments(kind)) is not None
    ]
    texts = [s.text for segments in transcripts for s in segments]
    lengths = [len(segments) for segments in transcripts]

    for segments in transcripts:
        starts = [s.start for s in segments]
        assert starts == sorted(starts)
        assert all(a.end <= b.start for a, b in itertools.pairwise(segments))
    assert min(lengths) <= 3
    assert 300 <= max(lengths) <= 600
    assert any(s.start == s.end for segments in transcripts for s in segments)
    assert any(a.end < b.start for t in transcripts for a, b in itertools.pairwise(t))
    for needle in (",", '"', "\n", "-->", "é", "日本語"):
        assert any(needle in text for text in texts), needle
    assert any(text.startswith(" ") for text in texts)


def test_transcripts_stay_within_the_duration(library: FakeLibrary) -> None:
    for video in library.videos()[:200]:
        for kind in ("visual", "audio"):
            segments = video.segments(kind) or ()
            assert all(0 <= s.start <= s.end <= video.duration for s in segments)


def test_long_videos_get_many_segments() -> None:
    video = FakeVideo("VI000000000000000001", duration=1500, visual=Generated(3))

    segments = video.segments("visual")

    assert segments is not None
    assert len(segments) > 150
    assert segments == video.segments("visual")


def test_a_large_library_is_generated_lazily() -> None:
    library = FakeLibrary.generate(100_000, seed=1)

    assert len(library) == 100_000
    assert all(isinstance(v.visual, Generated) for v in library.videos()[:10])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "'size' must be between"),
        ({"size": 1_000_001}, "'size' must be between"),
        ({"public": -1}, "'public' must be between"),
        ({"unique_ids": ()}, "'unique_ids'"),
        ({"unique_ids": ("",)}, "'unique_ids'"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeLibrary.generate(**kwargs)  # type: ignore[arg-type]


def test_explicit_videos_can_be_added_changed_and_removed() -> None:
    library = FakeLibrary()
    video = FakeVideo("VI000000000000000002", visual=[FakeSegment(0, 1, "a")], tags="solo")
    library.add(video)
    revision = library.revision

    changed = library.replace(video.video_no, status="UNPARSE")
    removed = library.remove(video.video_no)

    assert video.visual == (FakeSegment(0, 1, "a"),)
    assert video.tags == ("solo",)
    assert changed.status == "UNPARSE"
    assert removed is changed
    assert library.revision == revision + 2
    assert video.video_no not in library
    assert library.get(video.video_no) is None
    assert repr(library) == "<FakeLibrary videos=0 public=0>"


def test_replace_can_renumber() -> None:
    library = FakeLibrary([FakeVideo("VI1"), FakeVideo("VI2")])

    library.replace("VI1", video_no="VI3")

    assert sorted(v.video_no for v in library) == ["VI2", "VI3"]
    assert library["VI3"].video_no == "VI3"
    with pytest.raises(ValueError, match="already in the library"):
        library.replace("VI3", video_no="VI2")


def test_duplicates_are_refused() -> None:
    library = FakeLibrary([FakeVideo("VI1")])

    with pytest.raises(ValueError, match="already in the library"):
        library.add(FakeVideo("VI2"), FakeVideo("VI1"))
    assert len(library) == 1


def test_public_videos_belong_to_no_namespace() -> None:
    library = FakeLibrary([FakeVideo("PI-1", unique_id="x"), FakeVideo("VI1", unique_id="x")])

    assert [v.video_no for v in library.public_videos()] == ["PI-1"]
    assert [v.video_no for v in library.videos("x")] == ["VI1"]
    assert library.videos(status="PARSE") == [library["VI1"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"video_no": ""}, "video_no"), ({"video_no": "VI1", "unique_id": ""}, "unique_id")],
)
def test_videos_need_a_number_and_a_namespace(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeVideo(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (5, 4)])
def test_segments_need_ordered_times(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="start <= end"):
        FakeSegment(start, end, "x")


def test_segments_reject_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="subtitles"):
        FakeVideo("VI1").segments("subtitles")
