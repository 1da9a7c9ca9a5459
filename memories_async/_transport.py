"""The only module that talks aiohttp: send a :class:`Request`, return status, headers, bytes.

aiohttp and timeout exceptions become :class:`~memories_async.TransportError`
(``raise … from exc``), so nothing above this layer knows which HTTP library
carried the bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs

from . import _protocol as protocol
from ._errors import ConfigError, DecodeError, MemoriesError, RequestTimeoutError, TransportError
from ._protocol import Request

logger = logging.getLogger("memories_async")


@attrs.frozen(slots=True)
class Response:
    """What came back for one request."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def answer_data(request: Request, response: Response) -> Any:
    """The ``data`` of ``response``, the answer to ``request``, or the error it carries
    (:func:`~memories_async._protocol.parse_response`)."""
    return protocol.parse_response(
        response.status,
        response.headers,
        response.body,
        endpoint=request.endpoint,
        video_no=request.video_no,
    )


def new_session(
    *,
    max_connections: int,
    connect_timeout: float,
    trace_configs: list[aiohttp.TraceConfig] | None = None,
) -> aiohttp.ClientSession:
    """A session sized for ``max_connections`` concurrent requests to one host, with
    aiohttp's ``trace_configs`` (its tracing signals) if given."""
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        raise_for_status=False,
        trace_configs=trace_configs,
    )


class Transport:
    """Sends requests over one aiohttp session, which it may or may not own.

    A borrowed session is never closed here; an owned one is closed by
    :meth:`aclose`.
    """

    __slots__ = ("_max_body", "_owns_session", "_session", "_timeout", "_total")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        owns_session: bool,
        timeout: float,
        connect_timeout: float,
        max_body: int = 64 * 1024 * 1024,
    ) -> None:
        self._session = session
        self._max_body = max_body
        self._owns_session = owns_session
        self._total = timeout
        # The whole attempt is bounded by asyncio.timeout (one timer); aiohttp keeps only
        # the connect timeout, which costs nothing on a pooled connection. aiohttp's own
        # total timeout costs about twice as much CPU per request.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session requests go through."""
        return self._session

    @property
    def pool_limit(self) -> int:
        """How many connections the session's pool may open at once to the service
        (0: no limit): the smaller non-zero of the connector's ``limit`` and
        ``limit_per_host``, since every request goes to one host."""
        connector = self._session.connector
        if connector is None:
            return 0
        limits = [n for n in (connector.limit, connector.limit_per_host) if n]
        return min(limits, default=0)

    @property
    def owns_session(self) -> bool:
        """Whether :meth:`aclose` closes the session."""
        return self._owns_session

    async def send(self, request: Request, /) -> Response:
        """Send ``request`` and read the whole answer.

        Raises :class:`~memories_async.RequestTimeoutError` when the attempt
        exceeds its timeout and :class:`~memories_async.TransportError` for any
        other failure to get an answer.
        """
        try:
            async with (
                asyncio.timeout(self._total),
                self._session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    data=request.body,
                    headers=request.headers,
                    timeout=self._timeout,
                    raise_for_status=False,
                    allow_redirects=True,
                ) as response,
            ):
                length = response.content_length
                if length is None:
                    body = await self._read_capped(response, request)
                elif length <= self._max_body:
                    body = await response.read()
                else:
                    raise self._too_large(request, f"{length:,} bytes")
                return Response(response.status, response.headers, body)
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"no answer within {self._total:g}s",
                video_no=request.video_no,
                endpoint=request.endpoint,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise ConfigError(f"invalid URL {request.url!r}: check base_url") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"{type(exc).__name__}: {_describe(exc)}",
                video_no=request.video_no,
                endpoint=request.endpoint,
            ) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse, request: Request) -> bytes:
        """Read a body of unknown length, at most ``max_body`` bytes of it."""
        limit = self._max_body
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise self._too_large(request, f"more than {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, request: Request, size: str) -> DecodeError:
        return DecodeError(
            f"the answer holds {size}, more than the {self._max_body:,} allowed"
            " (Config.max_response_bytes): it was not read",
            video_no=request.video_no,
            endpoint=request.endpoint,
        )

    async def aclose(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session and not self._session.closed:
            await self._session.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.TooManyRedirects):
        # Its own text is the last status and an empty message: "0, message=''".
        return (
            f"redirected {len(exc.history)} times, the last time from {exc.request_info.real_url}"
        )
    text = str(exc).strip()
    return text.splitlines()[0] if text else "connection failed"


def log_attempt(
    request: Request,
    attempt: int,
    started: float,
    error: MemoriesError | None,
    status: int | None = None,
) -> None:
    """Log one attempt at DEBUG: the request, its answer's status and code, the time it took."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    status = getattr(error, "status", status)
    code = getattr(error, "code", None) if error is not None else protocol.SUCCESS
    logger.debug(
        "%s %s video_no=%s status=%s code=%s attempt=%d elapsed=%.3fs%s",
        request.method,
        request.endpoint,
        request.video_no or "-",
        status if status is not None else "-",
        code or "-",
        attempt,
        time.perf_counter() - started,
        f" error={type(error).__name__}" if error is not None else "",
    )
