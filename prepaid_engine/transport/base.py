"""The request/reply machinery shared by every framed link (TCP transparent gateway, local serial port).

A framed link carries DL/T 645 or CJ/T 188 bytes. It sends one request and waits for the first complete frame
that the caller's ``expect`` predicate accepts; anything else that arrives meanwhile (stray frames, garbage,
echoes, replies meant for someone else) is discarded. Bytes that arrive while no request is in flight are
dropped unread. After a request failed (timeout, garbled reply, lost connection) the link is *dirty*: before
the next request it waits until the line has been quiet for ``drain_quiet`` seconds (a late reply lands in
that window and is dropped), and if the line never goes quiet within ``max_drain`` seconds it reconnects.
So a late reply is never taken for the next request's answer; the caller's ``expect`` (address, function, data
identifier) is the second fence.

Everything is callback driven (``asyncio.Protocol``), not stream based: one exchange costs one future and the
deframer's work (the request timeout is one watchdog timer per link, re-armed only when it fires), which keeps
the poller's CPU time per reading small.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import ConfigError, FrameError, LinkError, LinkTimeout

# ("tx" | "rx", the bytes of one frame)
TraceFn = Callable[[str, bytes], None]
Expect = Callable[[Any], bool]


class Deframer(Protocol):
    """What a link needs of a codec's deframer (``codecs.dlt645.Deframer``, ``codecs.cjt188.Deframer``)."""

    def feed(self, data: bytes) -> None: ...

    def next_frame(self) -> Any | None: ...


DeframerFactory = Callable[[], Deframer]


def frame_bytes(frame: Any) -> bytes:
    """The wire bytes of a decoded frame, for the trace (codecs keep them as ``raw``; else re-encode)."""
    if isinstance(frame, bytes | bytearray):
        return bytes(frame)
    raw = getattr(frame, "raw", None)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    encode = getattr(frame, "encode", None)
    if callable(encode):
        return bytes(encode())
    return repr(frame).encode()


class _LinkProtocol(asyncio.Protocol):
    """asyncio glue: hands every event to the owning link."""

    __slots__ = ("_link",)

    def __init__(self, link: FramedLink):
        self._link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._link._on_made(self, transport)

    def data_received(self, data: bytes) -> None:
        self._link._on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._on_lost(self, exc)


class FramedLink:
    """Base of :class:`TransparentLink` and :class:`SerialLink`: one request in flight, filtered replies.

    Subclasses implement :meth:`_open` (create the asyncio transport with :meth:`_protocol_factory`).
    """

    def __init__(
        self,
        *,
        deframer_factory: DeframerFactory | None = None,
        connect_timeout: float = 3.0,
        trace: TraceFn | None = None,
        drain_quiet: float = 0.05,
        max_drain: float = 2.0,
        frame_to_bytes: Callable[[Any], bytes] = frame_bytes,
    ):
        self.deframer_factory = deframer_factory
        self.connect_timeout = connect_timeout
        self.trace = trace
        self.drain_quiet = drain_quiet
        self.max_drain = max_drain
        self._frame_to_bytes = frame_to_bytes
        self._lock: asyncio.Lock | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._protocol: _LinkProtocol | None = None
        self._waiter: asyncio.Future | None = None
        self._expect: Expect | None = None
        self._deframer: Deframer | None = None
        self._deframers: dict[DeframerFactory, Deframer] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._timeout = 0.0
        self._last_rx = 0.0
        self._loop_time: Callable[[], float] = _no_time
        self._dirty = False
        self.discarded_bytes = 0  # bytes dropped because no request was waiting for them
        self.discarded_frames = 0  # complete frames dropped by ``expect``
        self._discarded_before = 0
        self.connects = 0

    # --- public ---------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def describe(self) -> str:
        return type(self).__name__

    async def connect(self) -> None:
        """Open the link if it is not open. Raises :class:`LinkError` (refused, unreachable, too slow)."""
        if self.connected:
            return
        self._drop_transport()
        try:
            await asyncio.wait_for(self._open(), self.connect_timeout)
        except TimeoutError as exc:
            raise LinkError(f"{self.describe()}: no connection within {self.connect_timeout:g} s") from exc
        except OSError as exc:
            raise LinkError(f"{self.describe()}: {exc.strerror or exc}") from exc
        if not self.connected:
            raise LinkError(f"{self.describe()}: connection closed while opening")
        self.connects += 1
        self._dirty = False

    async def exchange(self, request: bytes, *, timeout: float, expect: Expect | None = None, deframer=None):
        """Send ``request``; return the first complete frame ``expect`` accepts.

        ``deframer`` overrides the link's deframer factory for this exchange (a bus that mixes DL/T 645 and
        CJ/T 188 meters). Raises :class:`LinkTimeout` when no accepted frame arrives within ``timeout``
        seconds, :class:`LinkError` when the link is down or drops, and the deframer's :class:`FrameError`
        (e.g. :class:`ChecksumError`) for a garbled frame, so that the caller can retry.
        """
        lock = self._lock
        if lock is None:
            lock = self._lock = asyncio.Lock()
        async with lock:
            if not self.connected:
                await self.connect()
            if self._dirty:
                await self._drain()
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            factory = deframer or self.deframer_factory
            if factory is None:
                raise ConfigError(f"{self.describe()}: no deframer for this exchange")
            self._deframer = self._fresh_deframer(factory)
            self._expect = expect
            self._waiter = waiter
            self._discarded_before = self.discarded_frames
            self._arm(loop, loop.time() + timeout, timeout)
            try:
                if self.trace is not None:
                    self.trace("tx", request)
                self._transport.write(request)  # type: ignore[union-attr]
                return await waiter
            except (LinkError, FrameError):
                self._dirty = True
                self._last_rx = loop.time()
                raise
            except asyncio.CancelledError:
                # the reply may still come: do not let it answer the next request
                self._dirty = True
                self._last_rx = loop.time()
                raise
            finally:
                self._waiter = None
                self._expect = None
                self._deframer = None

    async def close(self) -> None:
        transport = self._transport
        self._drop_transport()
        if transport is not None:
            await asyncio.sleep(0)  # let the transport's close callbacks run

    # --- subclass hooks -------------------------------------------------------------------------------------
    async def _open(self) -> None:
        raise NotImplementedError

    def _protocol_factory(self) -> _LinkProtocol:
        return _LinkProtocol(self)

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float, timeout: float) -> None:
        """Set the pending request's deadline. One watchdog timer per link, re-armed only when it fires
        early (a later request's deadline) or would fire late (a shorter timeout): most requests create no
        timer at all, which matters at thousands of requests per second."""
        self._deadline = deadline
        self._timeout = timeout
        watchdog = self._watchdog
        if watchdog is not None and watchdog.when() > deadline:
            watchdog.cancel()
            watchdog = None
        if watchdog is None:
            self._watchdog = loop.call_at(deadline, self._on_watchdog)

    def _on_watchdog(self) -> None:
        self._watchdog = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        if loop.time() >= self._deadline:
            strays = self.discarded_frames - self._discarded_before
            extra = f" ({strays} frame(s) not answering the request were discarded)" if strays else ""
            waiter.set_exception(LinkTimeout(f"no reply within {self._timeout:g} s{extra}"))
        else:
            self._watchdog = loop.call_at(self._deadline, self._on_watchdog)

    def _fresh_deframer(self, factory: DeframerFactory) -> Deframer:
        """An empty deframer of ``factory``'s kind: one is kept per kind and emptied with its ``clear()``."""
        deframer = self._deframers.get(factory)
        clear = getattr(deframer, "clear", None)
        if clear is None:
            deframer = self._deframers[factory] = factory()
        else:
            clear()
        return deframer  # type: ignore[return-value]

    # --- internals ------------------------------------------------------------------------------------------
    def _drop_transport(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            transport.close()

    async def _drain(self) -> None:
        """Wait until nothing arrived for ``drain_quiet`` s; reconnect if the line keeps talking."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_drain
        while True:
            now = loop.time()
            quiet = now - self._last_rx
            if quiet >= self.drain_quiet:
                break
            if now >= deadline:
                self._drop_transport()
                await self.connect()
                break
            await asyncio.sleep(min(self.drain_quiet - quiet, deadline - now) + 0.0005)
        self._dirty = False

    def _on_made(self, protocol: _LinkProtocol, transport: asyncio.BaseTransport) -> None:
        self._protocol = protocol
        self._transport = transport
        self._loop_time = asyncio.get_running_loop().time

    def _on_lost(self, protocol: _LinkProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._transport = None
        self._protocol = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(LinkError(f"{self.describe()}: connection lost ({exc or 'closed by peer'})"))

    def _on_data(self, protocol: _LinkProtocol, data: bytes) -> None:
        if protocol is not self._protocol:
            return
        self._last_rx = self._loop_time()
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.discarded_bytes += len(data)
            return
        deframer = self._deframer
        expect = self._expect
        try:
            deframer.feed(data)  # type: ignore[union-attr]
            while (frame := deframer.next_frame()) is not None:  # type: ignore[union-attr]
                if self.trace is not None:
                    self.trace("rx", self._frame_to_bytes(frame))
                if expect is None or expect(frame):
                    waiter.set_result(frame)
                    return
                self.discarded_frames += 1
        except FrameError as exc:
            waiter.set_exception(exc)


def _no_time() -> float:
    return 0.0
