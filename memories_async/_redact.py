"""Hiding secrets (the API key, a store password) in text about to leave the process."""

from __future__ import annotations

import re

MIN_SHOWN_PREFIX = 8
"""A secret's first characters that count as the secret: a text holding any prefix of it
this long (a proxy echoing a truncated key) has that prefix hidden."""


class Redactor:
    """Replaces every known secret with ``***`` in a text, whatever its letter case, and any
    prefix of a secret of :data:`MIN_SHOWN_PREFIX` characters or more (shorter secrets only
    whole)."""

    __slots__ = ("_patterns", "_secrets")

    def __init__(self, *secrets: str | None) -> None:
        self._secrets: list[str] = []
        self._patterns: list[re.Pattern[str]] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Hide ``secret`` from now on (empty values are ignored)."""
        if not secret or secret in self._secrets:
            return
        self._secrets.append(secret)
        self._patterns.append(re.compile(re.escape(secret[:MIN_SHOWN_PREFIX]), re.IGNORECASE))

    def __call__(self, text: str) -> str:
        """Return ``text`` with every known secret (or long prefix of one) replaced."""
        for secret, pattern in zip(self._secrets, self._patterns, strict=True):
            if pattern.search(text) is None:
                continue
            pieces, end = [], 0
            for match in pattern.finditer(text):
                if match.start() < end:
                    continue  # inside the secret just hidden
                stop = match.end()
                # Extend the match as far as the text goes on spelling the secret.
                while (
                    stop - match.start() < len(secret)
                    and stop < len(text)
                    and text[stop].lower() == secret[stop - match.start()].lower()
                ):
                    stop += 1
                pieces += [text[end : match.start()], "***"]
                end = stop
            text = "".join(pieces) + text[end:]
        return text
