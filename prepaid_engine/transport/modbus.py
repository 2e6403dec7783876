"""Modbus links: one pymodbus async client per bus.

- Modbus-TCP gateway (``Transport.MODBUS_TCP``): MBAP framing (``FramerType.SOCKET``), unit id = meter
  address.
- RTU over a transparent gateway (``Transport.TRANSPARENT`` with Modbus meters): ``FramerType.RTU`` over TCP.
  RTU has no transaction id, so after a timeout the link reconnects: a late reply can never be read as the
  answer to the next request.

pymodbus runs with ``retries=0`` and no automatic reconnect: the poller owns retries, backoff and reconnects.
Failures become the engine's errors: no reply -> :class:`LinkTimeout`; connection trouble ->
:class:`LinkError`; a Modbus exception response -> :class:`MeterError` (``code`` = exception code, ``names``
from the table below).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from ..errors import ConfigError, LinkError, LinkTimeout, MeterError
from .base import TraceFn

# Modbus exception codes (Modbus Application Protocol 1.1b3, section 7)
MODBUS_EXCEPTIONS: dict[int, str] = {
    0x01: "illegal_function",
    0x02: "illegal_data_address",
    0x03: "illegal_data_value",
    0x04: "device_failure",
    0x05: "acknowledge",
    0x06: "device_busy",
    0x08: "memory_parity_error",
    0x0A: "gateway_path_unavailable",
    0x0B: "gateway_target_no_response",
}

# Exceptions a Modbus-TCP gateway answers on behalf of the meter behind it: link trouble, not the meter's.
GATEWAY_EXCEPTIONS: dict[int, type[LinkError]] = {0x0A: LinkError, 0x0B: LinkTimeout}

_READS = {"holding": "read_holding_registers", "input": "read_input_registers"}

# pymodbus logs every unanswered request and dropped connection at ERROR level. Here those are ordinary
# outcomes that the poller reports itself (PollError, the communication log), so pymodbus's own log is kept to
# CRITICAL unless the application configured that logger itself.
_PYMODBUS_LOG = logging.getLogger("pymodbus")
if _PYMODBUS_LOG.level == logging.NOTSET:
    _PYMODBUS_LOG.setLevel(logging.CRITICAL)

# pymodbus closes the connection after this many unanswered requests in a row unless told otherwise; a bus
# with several dead meters in a row is normal for us, so the limit is set out of reach.
_NO_RESPONSE_LIMIT = 1 << 30


class _ModbusLinkBase:
    """What Modbus-TCP, RTU-over-TCP and serial Modbus links share. Subclasses build the pymodbus client."""

    reconnect_after_timeout = False

    def __init__(self, *, timeout: float = 1.0, connect_timeout: float = 3.0, trace: TraceFn | None = None):
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.trace = trace
        self._client: Any = None
        self._lock: asyncio.Lock | None = None
        self.connects = 0

    def _make_client(self) -> Any:
        raise NotImplementedError

    def _client_options(self) -> dict[str, Any]:
        """What every pymodbus client here is built with: our reply timeout, our trace, and no retries or
        automatic reconnects of its own (the poller owns those)."""
        return {
            "timeout": self.timeout,
            "retries": 0,
            "reconnect_delay": 0,
            "trace_packet": self._trace_packet,
        }

    def describe(self) -> str:
        return type(self).__name__

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if self.trace is not None:
            self.trace("tx" if sending else "rx", bytes(data))
        return data

    async def connect(self) -> None:
        """Open the link if it is not open; :class:`LinkError` if the gateway/port cannot be reached."""
        if self.connected:
            return
        self._close_client()
        client = self._make_client()
        client.set_max_no_responses(_NO_RESPONSE_LIMIT)
        # pymodbus uses one timeout for connecting and for replies: connect with ours, then answer with ours
        client.ctx.comm_params.timeout_connect = self.connect_timeout
        try:
            ok = await asyncio.wait_for(client.connect(), self.connect_timeout + 0.5)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise LinkError(f"{self.describe()}: cannot connect ({exc})") from exc
        if not ok:
            client.close()
            raise LinkError(f"{self.describe()}: cannot connect (refused or unreachable)")
        client.ctx.comm_params.timeout_connect = self.timeout
        self._client = client
        self.connects += 1

    async def close(self) -> None:
        self._close_client()
        await asyncio.sleep(0)

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        lock = self._lock
        if lock is None:
            lock = self._lock = asyncio.Lock()
        async with lock:
            if not self.connected:
                await self.connect()
            try:
                response = await getattr(self._client, method)(*args, **kwargs)
            except ModbusIOException as exc:
                if self.reconnect_after_timeout:
                    self._close_client()
                raise LinkTimeout(f"{self.describe()}: {what}: no reply within {self.timeout:g} s") from exc
            except (ConnectionException, OSError) as exc:
                self._close_client()
                raise LinkError(f"{self.describe()}: {what}: {exc}") from exc
            except ModbusException as exc:  # anything else pymodbus raises about the exchange
                self._close_client()
                raise LinkError(f"{self.describe()}: {what}: {exc}") from exc
            except asyncio.CancelledError:
                if self.reconnect_after_timeout:
                    self._close_client()
                raise
            if response.isError():
                code = int(getattr(response, "exception_code", 0) or 0)
                name = MODBUS_EXCEPTIONS.get(code, f"exception_{code:02x}")
                if code in GATEWAY_EXCEPTIONS:  # the gateway speaks for a meter that did not answer
                    raise GATEWAY_EXCEPTIONS[code](f"{self.describe()}: {what}: gateway says {name}")
                raise MeterError(f"{what}: Modbus exception {code:#04x} {name}", code=code, names=(name,))
            return response

    async def read_block(self, device_id: int, table: str, address: int, count: int) -> list[int]:
        """Read ``count`` registers from ``table`` ("holding" FC3 / "input" FC4) at protocol ``address``."""
        method = _READS.get(table)
        if method is None:
            raise ConfigError(f"unknown register table {table!r}")
        what = f"unit {device_id} {table} {address:#06x}+{count}"
        response = await self._call(what, method, address, count=count, device_id=device_id)
        registers = list(response.registers)
        if len(registers) < count:
            raise LinkError(f"{self.describe()}: {what}: short reply ({len(registers)} registers)")
        return registers[:count]

    async def write_registers(self, device_id: int, address: int, values: Sequence[int]) -> None:
        """Write a register block (FC16); returns once the meter acknowledged it."""
        what = f"unit {device_id} write {address:#06x}+{len(values)}"
        await self._call(what, "write_registers", address, list(values), device_id=device_id)


class ModbusLink(_ModbusLinkBase):
    """pymodbus ``AsyncModbusTcpClient`` for one bus: ``FramerType.SOCKET`` (Modbus-TCP gateway) or
    ``FramerType.RTU`` (RTU through a transparent gateway; reconnects after a timeout)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        framer: FramerType = FramerType.SOCKET,
        **options: Any,
    ):
        """``options``: ``timeout`` (reply), ``connect_timeout`` and ``trace``, as for every Modbus link."""
        super().__init__(**options)
        self.host = host
        self.port = port
        self.framer = framer
        self.reconnect_after_timeout = framer == FramerType.RTU

    def describe(self) -> str:
        kind = "Modbus-TCP" if self.framer == FramerType.SOCKET else "Modbus RTU over TCP"
        return f"{kind} {self.host}:{self.port}"

    def _make_client(self) -> Any:
        return AsyncModbusTcpClient(self.host, port=self.port, framer=self.framer, **self._client_options())
