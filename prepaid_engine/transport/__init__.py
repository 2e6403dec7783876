"""Transports: the I/O under the poller. One link per bus, one request in flight per link.

- :class:`TransparentLink`: DL/T 645 / CJ/T 188 bytes over TCP to a transparent gateway's bus.
- :class:`SerialLink`: the same over a local serial port (pyserial).
- :class:`ModbusLink`: pymodbus async client, Modbus-TCP (``FramerType.SOCKET``) or RTU over TCP.
- :class:`SerialModbusLink`: pymodbus async serial client (RTU).

Framed links: ``await link.exchange(request, timeout=..., expect=predicate) -> frame``. Modbus links:
``await link.read_block(device_id, table, address, count) -> list[int]`` and
``await link.write_registers(device_id, address, values)``. All: ``await link.connect()``, ``link.connected``,
``await link.close()``. Errors: :class:`~prepaid_engine.errors.LinkError` (cannot connect, connection lost),
:class:`~prepaid_engine.errors.LinkTimeout` (no reply), the codec's ``FrameError``/``ChecksumError`` (garbled
reply), :class:`~prepaid_engine.errors.MeterError` (Modbus exception response).
"""

from .base import FramedLink, frame_bytes
from .modbus import MODBUS_EXCEPTIONS, ModbusLink
from .serial import SerialLink, SerialModbusLink
from .tcp import TransparentLink

__all__ = [
    "MODBUS_EXCEPTIONS",
    "FramedLink",
    "ModbusLink",
    "SerialLink",
    "SerialModbusLink",
    "TransparentLink",
    "frame_bytes",
]
