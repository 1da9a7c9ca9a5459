"""Where pacing state lives: in the process (``memory://``) or in Redis (``redis://``).

With ``memory://`` (the default) a governor keeps its :class:`QuotaEstimate`
itself and no store is involved. With a Redis URL every governor using the
same store and quota key shares one record: the GCRA slot (``tat``), any
server pause, and the adaptive estimate, so that many processes and machines
pace as one client of the account.

The record is a Redis hash. Two Lua scripts change it atomically:

* ``reserve`` takes the next slot if it is free (creating the record on first
  use), or says how long until it is, with the estimate;
* ``update`` writes a new estimate if nobody wrote one since it was read (a
  version number), and merges a pause (the later one wins).

**Clocks.** Every time in the record is on the Redis server's clock (``TIME``
inside the scripts), never a client's: machines' clocks may differ by seconds,
while one Redis clock orders every slot. A client only ever receives
durations ("wait 0.2 s") and the store's current time, from which it computes
the offset to its own monotonic clock at each call (off by at most the round
trip). The scripts are registered with redis-py's ``register_script``, which
reloads them if the server lost its script cache (a restart or a failover).

Keys are ``memories-async:quota:<name>``; the default name is a salted hash
of the base URL and the API key, never the key itself. Records expire after
:data:`IDLE_TTL` seconds unused.
"""

from __future__ import annotations

import hashlib
import math
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson

from ._errors import ConfigError, RateStoreError
from ._quota import JITTER, JITTER_SHARE, MARGIN, QuotaEstimate

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

MEMORY_URL = "memory://"
"""The in-process store: no sharing beyond one governor."""

SCHEMES = ("memory", "redis", "rediss", "unix")
"""The URL schemes a rate store may have."""

KEY_PREFIX = "memories-async:quota:"

IDLE_TTL = 600.0
"""Seconds after its last use at which a shared record expires."""

SOCKET_TIMEOUT = 2.0
"""Seconds a store operation may take before the store counts as lost."""

_SALT = b"memories-async/quota/v1\0"

_RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) * 1e-6
local key = KEYS[1]
local f = redis.call('HMGET', key, 'est', 'ver', 'rate', 'tat', 'pause')
local est, ver, rate = f[1], f[2], f[3]
local tat = tonumber(f[4]) or -1e18
local pause = tonumber(f[5]) or -1e18
if not est then
  if ARGV[1] == '' then
    return {string.format('%.6f', now), 'missing'}
  end
  est, ver, rate = ARGV[1], '0', ARGV[2]
  redis.call('HSET', key, 'est', est, 'ver', ver, 'rate', rate)
  if ARGV[7] ~= '' then
    tat = tonumber(ARGV[7])
    redis.call('HSET', key, 'tat', ARGV[7])
  end
end
local wait, reserved = 0, 1
if pause > now then
  wait, reserved = pause - now, 0
elseif rate ~= '' then
  local interval = (1 + tonumber(ARGV[4])) / tonumber(rate)
    + math.min(tonumber(ARGV[5]), JITTER_SHARE / tonumber(rate))
  local slot = math.max(now, tat - (tonumber(ARGV[3]) - 1) * interval)
  wait = slot - now
  if wait <= 0 then
    tat = math.max(tat, slot) + interval
    redis.call('HSET', key, 'tat', string.format('%.6f', tat))
  else
    reserved = 0
  end
end
redis.call('PEXPIRE', key, ARGV[6])
return {string.format('%.6f', now), string.format('%.6f', wait), reserved, est, ver,
        string.format('%.6f', tat), string.format('%.6f', pause)}
""".replace("JITTER_SHARE", repr(JITTER_SHARE))

_UPDATE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) * 1e-6
local key = KEYS[1]
if ARGV[4] ~= '' then
  local pause = tonumber(redis.call('HGET', key, 'pause')) or -1e18
  if tonumber(ARGV[4]) > pause then redis.call('HSET', key, 'pause', ARGV[4]) end
end
local f = redis.call('HMGET', key, 'est', 'ver')
if f[2] and f[2] ~= ARGV[1] then
  redis.call('PEXPIRE', key, ARGV[5])
  return {0, f[1], f[2], string.format('%.6f', now)}
end
local ver = tostring((tonumber(f[2]) or 0) + 1)
redis.call('HSET', key, 'est', ARGV[2], 'ver', ver, 'rate', ARGV[3])
redis.call('PEXPIRE', key, ARGV[5])
return {1, ARGV[2], ver, string.format('%.6f', now)}
"""


_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)(.*)@")
"""The password of a URL's ``user:password@``: up to the last ``@``, since a password
may hold ``#``, ``/``, ``?`` or ``@`` that a URL parser would take for the host's end."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for every message and repr).

    Works on the text, not on a parse of it, so that a malformed URL is
    redacted too and the rest of it stays as written.
    """
    return _PASSWORD.sub(r"\1***@", url, count=1)


def quota_key(base_url: str, api_key: str, name: str | None = None) -> str:
    """The store key of a quota: ``name`` if given, else a salted hash of URL and key."""
    if name is not None:
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise ConfigError(f"rate_name must be a non-empty printable string, got {name!r}")
        return KEY_PREFIX + name.strip()
    digest = hashlib.sha256(_SALT + base_url.encode() + b"\0" + api_key.encode()).hexdigest()
    return KEY_PREFIX + digest[:32]


def check_store_url(url: str) -> str:
    """Validate a rate store URL; return it. Raises :class:`ConfigError` naming the problem."""
    shown = redact_url(url)
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"rate_store must be a URL such as memory:// or redis://host:6379/0, got {shown!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"rate_store {shown!r} has an unknown scheme {scheme!r}:"
            " use memory:// or redis://host:port/db (rediss:// for TLS, unix:// for a socket)"
        )
    if scheme == "memory":
        if url.lower() != MEMORY_URL:
            raise ConfigError(f"rate_store {shown!r}: memory:// takes nothing after it")
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        _port = parts.port
    except ValueError as exc:
        raise ConfigError(f"rate_store {shown!r} is malformed: {exc}") from None
    if scheme != "unix" and not parts.hostname:
        raise ConfigError(f"rate_store {shown!r} names no host: use redis://host:6379/0")
    if scheme == "unix" and not parts.path:
        raise ConfigError(f"rate_store {shown!r} names no socket path: use unix:///path/to.sock")
    return url


class RedisRateStore:
    """A rate store in Redis, shared by every process that uses the same URL and key.

    Needs the ``redis`` extra (``pip install 'memories-async[redis]'``).
    Errors of the connection raise :class:`RateStoreError`, whose message
    names the store (password hidden) and the cause.
    """

    def __init__(self, url: str) -> None:
        check_store_url(url)
        try:
            import redis.asyncio
        except ImportError:  # pragma: no cover - the test environment has the extra
            raise ConfigError(
                "a redis:// rate store needs redis-py: pip install 'memories-async[redis]'"
            ) from None
        self.url = redact_url(url)
        """The store's URL with any password hidden."""
        try:
            self._redis: Redis = redis.asyncio.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigError(f"rate_store {self.url!r} is malformed: {exc}") from None
        self._reserve: AsyncScript = self._redis.register_script(_RESERVE)
        self._update: AsyncScript = self._redis.register_script(_UPDATE)

    def __repr__(self) -> str:
        return f"<RedisRateStore {self.url}>"

    async def check(self) -> None:
        """Make sure the store answers; raises :class:`RateStoreError` saying why not."""
        await self._run(self._redis.ping())

    async def aclose(self) -> None:
        """Close the connections to the store."""
        await self._redis.aclose()

    async def reserve(
        self, key: str, initial: QuotaEstimate, *, burst: int, local_now: float
    ) -> tuple[float, bool, QuotaEstimate, str, float]:
        """Take the free slot of ``key``: ``(wait, taken, estimate, version, offset)``.

        When it is not free (or a server's pause is on), nothing is taken and
        ``wait`` says how long until it may be. A slot is taken only once free
        so that slots are spaced from the moments they were really taken,
        whatever the sleep of each process overshot. ``offset`` is store time
        minus ``local_now``; the estimate comes back on the local clock.
        """
        reply = await self._reserve_call(key, None, burst=burst)
        if reply[1] == "missing":
            # A new record (first use, expiry, a store restarted empty): seeded
            # with this governor's state, moved onto the store's clock.
            offset = float(reply[0]) - local_now
            reply = await self._reserve_call(key, (initial, offset), burst=burst)
        now, wait, reserved, est, version, tat, pause = reply
        offset = float(now) - local_now
        estimate = self._estimate(est, offset, initial)
        estimate.tat = float(tat) - offset
        estimate.pause_until = float(pause) - offset
        return float(wait), bool(int(reserved)), estimate, str(version), offset

    async def _reserve_call(
        self,
        key: str,
        seed: tuple[QuotaEstimate, float] | None,
        *,
        burst: int,
    ) -> list[Any]:
        """Run the reserve script; ``seed`` (an estimate and its clock offset) creates
        a missing record, without one the script answers ``[now, "missing"]``."""
        record, rate, tat = "", "", ""
        if seed is not None:
            estimate, offset = seed
            record = orjson.dumps(estimate.to_wire(offset)).decode()
            rate = "" if estimate.rate is None else repr(estimate.rate)
            if math.isfinite(estimate.tat):
                tat = f"{estimate.tat + offset:.6f}"
        args: list[str | int | float] = [
            record,
            rate,
            burst,
            MARGIN,
            JITTER,
            int(IDLE_TTL * 1000),
            tat,
        ]
        reply: list[Any] = await self._run(self._reserve(keys=[key], args=args))
        return reply

    async def update(
        self,
        key: str,
        version: str,
        estimate: QuotaEstimate,
        *,
        offset: float,
        pause_until: float | None,
    ) -> tuple[bool, QuotaEstimate | None, str]:
        """Write ``estimate`` if the record is still at ``version``; merge ``pause_until``.

        Returns ``(written, the record's estimate if not written, its version)``.
        """
        wire = orjson.dumps(estimate.to_wire(offset)).decode()
        rate = "" if estimate.rate is None else repr(estimate.rate)
        pause = "" if pause_until is None else f"{pause_until + offset:.6f}"
        reply = await self._run(
            self._update(keys=[key], args=[version, wire, rate, pause, int(IDLE_TTL * 1000)])
        )
        written, est, new_version, _now = reply
        if int(written):
            return True, None, str(new_version)
        return False, self._estimate(est, offset, estimate), str(new_version)

    def _estimate(self, raw: str | None, offset: float, fallback: QuotaEstimate) -> QuotaEstimate:
        if raw is None:
            return fallback
        try:
            data = orjson.loads(raw)
            return QuotaEstimate.from_wire(data if isinstance(data, dict) else {}, offset)
        except ValueError as exc:
            message = f"the rate store {self.url} holds a damaged record: {exc}"
            raise RateStoreError(message) from None

    async def _run(self, call: Any) -> Any:
        import redis.exceptions

        try:
            return await call
        except (redis.exceptions.RedisError, OSError) as exc:
            cause = (str(exc) or type(exc).__name__).rstrip(".")
            raise RateStoreError(f"rate store {self.url}: {cause}") from None


def open_rate_store(url: str | None) -> RedisRateStore | None:
    """The store for ``url``: ``None`` for ``memory://`` (or ``None``), else a Redis store."""
    if url is None:
        return None
    check_store_url(url)
    if url.lower() == MEMORY_URL:
        return None
    return RedisRateStore(url)
