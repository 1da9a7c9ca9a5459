"""Secrets hidden from text about to leave the process: any case, any long prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from memories_async import TranscriptKind
from memories_async._redact import MIN_SHOWN_PREFIX, Redactor
from memories_async._sinks import FailureLog

KEY = "sk-AbCdEfGh0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} end", "key *** end"),
        (f"echoed {KEY.lower()}!", "echoed ***!"),
        (f"upper {KEY.upper()}", "upper ***"),
        (f"cut {KEY[:12]}… by a proxy", "cut ***… by a proxy"),
        (f"cut {KEY[:MIN_SHOWN_PREFIX]}", "cut ***"),
        (f"too short to tell {KEY[: MIN_SHOWN_PREFIX - 1]}", f"too short to tell {KEY[:7]}"),
        (f"{KEY}{KEY}", "******"),
        (f"{KEY}tail", "***tail"),
        ("nothing here", "nothing here"),
    ],
)
def test_a_key_is_hidden_whatever_its_case_and_however_it_was_cut(text: str, expected: str) -> None:
    assert Redactor(KEY)(text) == expected


def test_short_secrets_are_hidden_only_whole_and_several_secrets_all() -> None:
    redact = Redactor("abc", None, "", "pw-0123456789")
    assert redact("xABCx ab PW-0123456789 pw-01234 pw-0123") == "x***x ab *** *** pw-0123"
    redact.add("abc")  # once is enough
    assert redact("abc") == "***"


def test_the_failures_file_hides_an_echoed_key(tmp_path: Path) -> None:
    log = FailureLog(str(tmp_path / "f.tsv"), redact=Redactor(KEY))
    try:
        log.record("VI1", TranscriptKind.VISUAL, "0001", 1, f"bad key {KEY.lower()[:14]}")
    finally:
        log.close()
    text = (tmp_path / "f.tsv").read_text()
    assert "bad key ***" in text
    assert KEY[:MIN_SHOWN_PREFIX].lower() not in text.lower()
