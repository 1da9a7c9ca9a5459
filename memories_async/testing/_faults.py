"""Deciding which request gets which injected fault."""

from __future__ import annotations

import random
from collections.abc import Sequence

from memories_async.testing._settings import Endpoint, FaultKind, FaultRule


class FaultInjector:
    """Applies :class:`FaultRule` objects in order, counting attempts per rule and video."""

    def __init__(self, rules: Sequence[FaultRule], rng: random.Random) -> None:
        self.rules = tuple(rules)
        self._rng = rng
        self._attempts: list[dict[str, int]] = [{} for _ in self.rules]

    def with_first(self, rule: FaultRule) -> FaultInjector:
        """A copy that tries ``rule`` before these rules, keeping their attempt counts."""
        injector = FaultInjector((rule, *self.rules), self._rng)
        injector._attempts[1:] = [dict(counts) for counts in self._attempts]
        return injector

    def pick(self, endpoint: Endpoint, video_no: str | None) -> FaultKind | None:
        """Return the fault to inject for this request, or ``None`` to answer normally."""
        for rule, attempts in zip(self.rules, self._attempts, strict=True):
            if rule.endpoints is not None and endpoint not in rule.endpoints:
                continue
            if rule.video_nos is not None and video_no not in rule.video_nos:
                continue
            if rule.first_attempts is not None:
                key = video_no or ""
                seen = attempts.get(key, 0) + 1
                attempts[key] = seen
                if seen > rule.first_attempts:
                    continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            kinds = rule.kinds
            return kinds[0] if len(kinds) == 1 else kinds[self._rng.randrange(len(kinds))]
        return None
