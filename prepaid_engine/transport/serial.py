"""A local RS-485 bus through pyserial: framed protocols (DL/T 645, CJ/T 188) and Modbus RTU.

:class:`SerialLink` has exactly the interface of :class:`~prepaid_engine.transport.tcp.TransparentLink`
(``connect``, ``exchange``, ``close``); :class:`SerialModbusLink` that of
:class:`~prepaid_engine.transport.modbus.ModbusLink` (``read_block``, ``write_registers``).
pyserial-asyncio is not used: the port is opened non-blocking and read when the event loop says its file
descriptor is readable, or, for ports without one (pyserial URLs such as ``loop://``), polled every
``poll_interval`` seconds.
DL/T 645 and CJ/T 188 lines are 8E1 by default.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import serial
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient

from ..errors import LinkError
from .base import FramedLink, _LinkProtocol
from .modbus import _ModbusLinkBase

try:
    import termios

    _TERMIOS_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # not POSIX
    _TERMIOS_ERRORS = ()


class _SerialTransport(asyncio.Transport):
    """The least an ``asyncio.Transport`` must do, over a non-blocking pyserial port."""

    def __init__(self, port: serial.SerialBase, protocol: _LinkProtocol, poll_interval: float):
        super().__init__()
        self._port: serial.SerialBase | None = port
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._poll_task: asyncio.Task | None = None
        self._fd: int | None = None
        try:
            self._fd = port.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            self._fd = None
        if self._fd is not None:
            self._loop.add_reader(self._fd, self._read_ready)
        else:
            self._poll_task = self._loop.create_task(self._poll(poll_interval))
        protocol.connection_made(self)

    def _read_ready(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            waiting = port.in_waiting
            data = port.read(waiting or 1)
        except (serial.SerialException, OSError) as exc:
            self._close(exc)
            return
        if data:
            self._protocol.data_received(data)

    async def _poll(self, interval: float) -> None:
        while self._port is not None:
            await asyncio.sleep(interval)
            port = self._port
            if port is None:
                return
            try:
                waiting = port.in_waiting
            except (serial.SerialException, OSError) as exc:
                self._close(exc)
                return
            if waiting:
                self._read_ready()

    def write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            return
        try:
            view = memoryview(data)
            while view:
                written = port.write(view) or 0
                view = view[written:]
        except (serial.SerialException, OSError) as exc:
            self._close(exc)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._close(None)

    def abort(self) -> None:
        self._close(None)

    def _close(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        port, self._port = self._port, None
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
        if self._poll_task is not None and self._poll_task is not asyncio.current_task():
            self._poll_task.cancel()
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)


class SerialLink(FramedLink):
    """DL/T 645 / CJ/T 188 on a local serial port (device path or pyserial URL); API of TransparentLink."""

    def __init__(
        self,
        device: str,
        *,
        baud: int = 2400,
        parity: str = serial.PARITY_EVEN,
        poll_interval: float = 0.001,
        **options: Any,
    ):
        """``options``: the :class:`~prepaid_engine.transport.base.FramedLink` settings (``deframer_factory``,
        ``connect_timeout``, ``trace``, ``drain_quiet``, ``max_drain``, ``frame_to_bytes``)."""
        super().__init__(**options)
        self.device = device
        self.baud = baud
        self.parity = parity
        self.poll_interval = poll_interval

    def describe(self) -> str:
        return f"serial port {self.device}"

    async def _open(self) -> None:
        # reads never block (timeout=0); writes may (a frame is a few dozen bytes, the driver buffers them)
        try:
            port = serial.serial_for_url(
                self.device, baudrate=self.baud, bytesize=8, parity=self.parity, stopbits=1, timeout=0
            )
            port.reset_input_buffer()
        except (ValueError, *_TERMIOS_ERRORS) as exc:  # settings the port refuses (e.g. parity on a pty)
            raise LinkError(
                f"{self.describe()}: cannot open with {self.baud} baud, parity {self.parity}: {exc}"
            ) from exc
        _SerialTransport(port, self._protocol_factory(), self.poll_interval)


class SerialModbusLink(_ModbusLinkBase):
    """pymodbus ``AsyncModbusSerialClient`` (RTU) on a local RS-485 port. Reconnects after a timeout."""

    reconnect_after_timeout = True

    def __init__(
        self,
        device: str,
        *,
        baud: int = 9600,
        parity: str = "N",
        **options: Any,
    ):
        """``options``: ``timeout`` (reply), ``connect_timeout`` and ``trace``, as for every Modbus link."""
        super().__init__(**options)
        self.device = device
        self.baud = baud
        self.parity = parity

    def describe(self) -> str:
        return f"Modbus RTU serial {self.device}"

    def _make_client(self) -> Any:
        options = self._client_options()
        return AsyncModbusSerialClient(
            self.device, framer=FramerType.RTU, baudrate=self.baud, parity=self.parity, **options
        )
