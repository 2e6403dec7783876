"""Shared pytest configuration for the engine tests (run from the repository root: ``python3 -m pytest``).

Kept minimal on purpose: fixtures that several test modules need go here, and the few test doubles that
several modules build alike (``from conftest import ...``).
"""

from __future__ import annotations

import asyncio
import contextlib

from prepaid_engine.errors import ChecksumError


class LineDeframer:
    """Deframer of the line test protocols: one frame per line; a line starting with ``!`` is a frame with a
    bad checksum. Subclasses choose which other lines are frames (:meth:`accepts`; by default any non-empty
    one) and the checksum error's message."""

    checksum_message = "bad line"

    def __init__(self):
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def accepts(self, line: bytes) -> bool:
        return bool(line)

    def next_frame(self):
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.startswith(b"!"):
                raise ChecksumError(self.checksum_message)
            if self.accepts(line):
                return line
        return None


class LocalServer:
    """A TCP server on a free port of 127.0.0.1: ``async with Peer(...) as peer`` listens at ``peer.port``
    and closes on exit. Subclasses implement ``async def _serve(self, reader, writer)``."""

    server: asyncio.AbstractServer | None = None
    port = 0

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
