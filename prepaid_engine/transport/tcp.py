"""Link to one bus of a transparent gateway: raw DL/T 645 / CJ/T 188 bytes over TCP (one TCP port per bus)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from .base import FramedLink


class TransparentLink(FramedLink):
    """Async TCP link to a transparent gateway's bus.

    ``await link.exchange(request, timeout=..., expect=...)`` sends one request and returns the first frame
    ``expect`` accepts (see :class:`~prepaid_engine.transport.base.FramedLink`). The link connects lazily (or
    with ``await link.connect()``), reconnects lazily after a disconnect, and allows one request in flight.
    """

    def __init__(self, host: str, port: int, **options: Any):
        """``options``: the :class:`~prepaid_engine.transport.base.FramedLink` settings (``deframer_factory``,
        ``connect_timeout``, ``trace``, ``drain_quiet``, ``max_drain``, ``frame_to_bytes``)."""
        super().__init__(**options)
        self.host = host
        self.port = port

    def describe(self) -> str:
        return f"transparent gateway {self.host}:{self.port}"

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _protocol = await loop.create_connection(self._protocol_factory, self.host, self.port)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
