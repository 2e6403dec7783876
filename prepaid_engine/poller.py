"""The poller: reads every meter of a set of gateways, and executes meter commands.

Input is plain data (:class:`~prepaid_engine.types.GatewaySpec` with its buses and meters, and
:class:`~prepaid_engine.types.MeterCommand` values); output is :class:`~prepaid_engine.types.PollResult` and
:class:`~prepaid_engine.types.CommandResult` values. No Odoo, no database.

Rules it keeps:

- All buses of all gateways run concurrently (one task per bus); the requests of one bus are strictly
  serialised (the bus task awaits each exchange before the next).
- Each request waits ``GatewaySpec.timeout`` seconds and is retried ``GatewaySpec.retries`` times after a
  timeout, a garbled frame (checksum, framing), a reply from another address or to another request, or a
  dropped connection. A meter's own refusal (``MeterError``) is never retried. A meter that fails a request
  is given up for this cycle at once (its other requests are not tried), so a dead meter costs
  ``timeout x (1 + retries)`` and only on its own bus.
- Partial readings: a meter that answers "no such data" for an identifier of its model (DL/T 645 ERR bit 1,
  a CJ/T 188 abnormal reply to a read, Modbus exception 02) is not a failed meter. A block it lacks is read
  again as the block's single identifiers, a single identifier it lacks is left out, and the reading keeps
  whatever it did answer (the total is what billing needs); ``PollResult.warnings`` names what each meter
  lacks (:class:`~prepaid_engine.types.PollWarning`), and identifiers passed back in ``MeterSpec.skip`` are
  not asked for again. A meter that has none of its identifiers fails with its refusal (``METER``).
- A bus whose gateway refuses the connection (or cannot be reached within ``connect_timeout``) fails fast:
  every meter still to be read on it gets a ``LINK`` error at once.
- ``cycle_timeout`` bounds the whole poll: what is not done by then is cancelled and reported as
  ``CANCELLED`` errors; readings already taken are kept. Cancelling ``poll()`` itself cancels every bus task
  and closes every link before the ``CancelledError`` propagates.
- ``Reading.read_at`` is the clock's time when the meter's last reply arrived (microseconds kept).
- ``GatewayState.online``: at least one well-formed reply from any meter of the gateway this cycle.
- Meter-side load events: a meter whose ``MeterSpec.load_events_seen`` is set (the event count last seen)
  and whose model holds ``trip_reason`` and ``event_count`` has them read after its reading, and the event
  records since that count (``Reading.trip_reason`` / ``load_event_count`` / ``load_events``); trouble
  there keeps the reading without them. Other meters cost no extra request.

Commands (``execute``) go to the bus of their meter (``MeterCommand.meter_key`` = ``MeterSpec.key``); each is
sent up to ``attempts`` times with exponential backoff (``backoff`` x 2^n, capped at ``backoff_max``), never
after ``expires_at`` (then EXPIRED), and is DONE only once confirmed by reading the new state back, or, for
kinds without a read-back on that model, once positively acknowledged (``confirmed=False``). A duplicate-
recharge answer for the purchase count we sent is success (the recharge was applied earlier), never a reason
to send a new count. A DL/T 645 relay command is valid for ``relay_window`` counted on the meter's own clock,
which is read before each attempt: meters whose clocks drift (or a simulator running at any speed) accept it
for as long as the product runs.

Synchronous callers (the Odoo cron in a worker thread) use :meth:`Poller.poll_sync` / :meth:`execute_sync`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .adapters import adapter_for
from .adapters.base import (
    BlockRead,
    BlockWrite,
    CommandContext,
    CommandPlan,
    FrameStep,
    MeterAdapter,
    ReadPlan,
    make_reading,
    step_identifiers,
)
from .describe import describe_frame
from .errors import (
    AddressError,
    ChecksumError,
    ConfigError,
    EngineError,
    FrameError,
    LinkError,
    LinkTimeout,
    MeterError,
    SecurityError,
    UnexpectedReply,
)
from .load import params as load_params
from .security import RechargeOutcome, interpret_recharge_reply
from .types import (
    BusCheck,
    BusSpec,
    CommandKind,
    CommandOutcome,
    CommandResult,
    CommandStatus,
    ErrorKind,
    FrameTrace,
    GatewaySpec,
    GatewayState,
    MeterCommand,
    MeterSpec,
    PollError,
    PollResult,
    PollWarning,
    Reading,
    Transport,
)

Clock = Callable[[], datetime]
# link_factory(gateway, bus, kind, trace) -> link; kind is an adapter's ``link_kind`` ("framed" | "modbus")
LinkFactory = Callable[[GatewaySpec, BusSpec, str, Callable[[str, bytes], None] | None], Any]

# Error class -> the kind reported; the most specific class in the exception's MRO wins.
ERROR_KINDS: dict[type[BaseException], ErrorKind] = {
    LinkTimeout: ErrorKind.TIMEOUT,
    LinkError: ErrorKind.LINK,
    ChecksumError: ErrorKind.CHECKSUM,
    AddressError: ErrorKind.ADDRESS,
    UnexpectedReply: ErrorKind.FRAME,
    FrameError: ErrorKind.FRAME,
    MeterError: ErrorKind.METER,
    SecurityError: ErrorKind.SECURITY,
    ConfigError: ErrorKind.UNSUPPORTED,
}
# Errors after which the same request is sent again (up to GatewaySpec.retries more times).
RETRYABLE: tuple[type[BaseException], ...] = (LinkError, FrameError)


def error_kind(exc: BaseException) -> ErrorKind:
    for cls in type(exc).__mro__:
        kind = ERROR_KINDS.get(cls)
        if kind is not None:
            return kind
    return ErrorKind.LINK


def _utc_now() -> datetime:
    return datetime.now(UTC)


def default_link_factory(
    gateway: GatewaySpec,
    bus: BusSpec,
    kind: str,
    trace: Callable[[str, bytes], None] | None,
    *,
    drain_quiet: float = 0.05,
) -> Any:
    """The link for ``kind`` ("framed" or "modbus") on one bus of ``gateway``."""
    from pymodbus import FramerType

    from .transport import ModbusLink, SerialLink, SerialModbusLink, TransparentLink

    transport = Transport(gateway.transport)
    if kind == "framed":
        if transport is Transport.TRANSPARENT:
            return TransparentLink(
                gateway.host,
                bus.port,
                connect_timeout=gateway.connect_timeout,
                trace=trace,
                drain_quiet=drain_quiet,
            )
        if transport is Transport.SERIAL:
            return SerialLink(
                bus.device,
                baud=bus.baud,
                connect_timeout=gateway.connect_timeout,
                trace=trace,
                drain_quiet=drain_quiet,
            )
        raise ConfigError(
            f"gateway {gateway.key}: DL/T 645 / CJ/T 188 meters need a transparent or serial bus"
        )
    if kind == "modbus":
        if transport is Transport.SERIAL:
            return SerialModbusLink(
                bus.device,
                baud=bus.baud,
                timeout=gateway.timeout,
                connect_timeout=gateway.connect_timeout,
                trace=trace,
            )
        framer = FramerType.SOCKET if transport is Transport.MODBUS_TCP else FramerType.RTU
        return ModbusLink(
            gateway.host,
            bus.port,
            framer=framer,
            timeout=gateway.timeout,
            connect_timeout=gateway.connect_timeout,
            trace=trace,
        )
    raise ConfigError(f"no link for {kind!r}")


class _BusRun:
    """One bus during one poll or one execute: its links, its progress and what it collected."""

    __slots__ = (
        "bus",
        "down",
        "errors",
        "gateway",
        "index",
        "last_contact",
        "links",
        "meter_key",
        "poller",
        "readings",
        "traces",
        "warnings",
    )

    def __init__(self, poller: Poller, gateway: GatewaySpec, bus: BusSpec):
        self.poller = poller
        self.gateway = gateway
        self.bus = bus
        self.links: dict[str, Any] = {}
        self.meter_key: str | None = None
        self.index = 0  # meters of the bus finished (read or failed)
        self.readings: list[Reading] = []
        self.errors: list[PollError] = []
        self.warnings: list[PollWarning] = []
        self.traces: list[FrameTrace] = []
        self.last_contact: datetime | None = None
        self.down: LinkError | None = None  # set when the link could not be (re)opened: the bus fails fast

    def trace(self, direction: str, data: bytes) -> None:
        meters = self.bus.meters
        protocol = next((m.model.protocol for m in meters if m.key == self.meter_key), None)
        if protocol is None and meters:
            protocol = meters[0].model.protocol
        self.traces.append(
            FrameTrace(
                self.gateway.key,
                self.bus.key,
                self.meter_key,
                direction,
                data,
                self.poller._clock(),
                describe_frame(
                    protocol, data, mbap=Transport(self.gateway.transport) is Transport.MODBUS_TCP
                ),
            )
        )

    def link(self, kind: str) -> Any:
        link = self.links.get(kind)
        if link is None:
            trace = self.trace if self.poller.trace else None
            link = self.poller._checkout(self.gateway, self.bus, kind)
            if link is None:
                link = self.poller._link_factory(self.gateway, self.bus, kind, trace)
            else:
                link.trace = trace
            self.links[kind] = link
        return link

    def error(self, meter_key: str | None, kind: ErrorKind, message: str) -> None:
        self.errors.append(
            PollError(self.gateway.key, self.bus.key, meter_key, kind, message, self.poller._clock())
        )

    def warn(self, meter_key: str, missing: Sequence[str]) -> None:
        """A meter read without the identifiers ``missing`` (it has no such data)."""
        missing = tuple(dict.fromkeys(missing))
        message = (
            f"the meter has no {', '.join(missing)} (no such data): the rest of its reading is kept; "
            "pass these in MeterSpec.skip to stop asking"
        )
        self.warnings.append(
            PollWarning(self.gateway.key, self.bus.key, meter_key, missing, message, self.poller._clock())
        )

    async def close(self) -> None:
        links, self.links = self.links, {}
        for link in links.values():
            await link.close()

    def release(self) -> None:
        """Hand the links back to the poller's pool (``keep_links``) after a run that finished normally."""
        links, self.links = self.links, {}
        for kind, link in links.items():
            self.poller._checkin(self.gateway, self.bus, kind, link)


@dataclass(slots=True)
class _Outcome:
    """What a finished command attempt sequence says, before it becomes a CommandResult."""

    status: CommandStatus
    confirmed: bool
    attempts: int
    message: str
    values: dict[str, Any] | None = None
    outcome: CommandOutcome | str = ""
    error: ErrorKind | None = None
    refusal: tuple[str, ...] = ()


class Poller:
    """Reads gateways and executes commands. See the module docstring for the rules.

    ``clock`` returns the current UTC time (default ``datetime.now(UTC)``); ``master_key`` (16 bytes) signs
    recharges; ``trace`` keeps every frame as :class:`FrameTrace`; ``cycle_timeout`` bounds one ``poll`` /
    ``execute`` call in seconds. ``backoff``/``backoff_max`` pace command retries; ``relay_window`` is how
    long a DL/T 645 relay command stays valid, counted on the meter's own clock (read before each
    attempt); ``confirm_delay`` waits between a
    command's acknowledgement and its read-back. ``link_factory`` replaces the transports and ``adapters``
    (protocol -> adapter) the meter sessions (tests, extensions); ``drain_quiet`` is the framed links' quiet
    period after a failed request.

    ``keep_links``: keep each bus's connection open from one ``poll``/``execute`` to the next (an edge
    collector polling in one event loop; a gateway that takes one client and reconnects slowly over 4G). Links
    of a bus that was cancelled or failed are closed, never pooled; ``await poller.close()`` closes the
    pool. Without it (the default) every call opens and closes its links. ``poll_sync``/``execute_sync``
    always close what they opened.

    ``stagger``: start the buses spread evenly over this many seconds instead of all at once. Thousands of
    identical buses started together stay in lockstep all cycle, so every round of requests and replies hits
    the gateways (and this process) as one burst; spreading the starts over about one request's bus time
    evens the load out, at the cost of at most ``stagger`` seconds on the cycle. Default 0.
    """

    def __init__(
        self,
        *,
        master_key: bytes | None = None,
        trace: bool = False,
        cycle_timeout: float | None = None,
        clock: Clock | None = None,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        relay_window: timedelta = timedelta(minutes=10),
        confirm_delay: float = 0.0,
        drain_quiet: float = 0.05,
        link_factory: LinkFactory | None = None,
        adapters: Mapping[str, MeterAdapter] | None = None,
        keep_links: bool = False,
        stagger: float = 0.0,
    ):
        if master_key is not None and len(master_key) not in (16, 24):
            raise ConfigError("the master key is 16 (or 24) bytes")
        self.master_key = master_key
        self.trace = trace
        self.cycle_timeout = cycle_timeout
        self._clock: Clock = clock or _utc_now
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.relay_window = relay_window
        self.confirm_delay = confirm_delay
        self.drain_quiet = drain_quiet
        if link_factory is None:

            def link_factory(gateway, bus, kind, trace):
                return default_link_factory(gateway, bus, kind, trace, drain_quiet=drain_quiet)

        self._link_factory = link_factory
        self._adapters = dict(adapters or {})
        self._plans: dict[MeterSpec, tuple[Any, ReadPlan]] = {}
        self.keep_links = keep_links
        self.stagger = stagger
        self._pool: dict[tuple, Any] = {}
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    # --- link pool ----------------------------------------------------------------------------------------
    @staticmethod
    def _pool_key(gateway: GatewaySpec, bus: BusSpec, kind: str) -> tuple:
        return (
            gateway.key,
            bus.key,
            kind,
            str(gateway.transport),
            gateway.host,
            bus.port,
            bus.device,
            bus.baud,
        )

    def _checkout(self, gateway: GatewaySpec, bus: BusSpec, kind: str) -> Any:
        if not self.keep_links:
            return None
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:  # links belong to the loop that opened them
            self._pool, self._pool_loop = {}, loop
        return self._pool.pop(self._pool_key(gateway, bus, kind), None)

    def _checkin(self, gateway: GatewaySpec, bus: BusSpec, kind: str, link: Any) -> None:
        self._pool[self._pool_key(gateway, bus, kind)] = link

    async def close(self) -> None:
        """Close the links kept open by ``keep_links``."""
        pool, self._pool = self._pool, {}
        for link in pool.values():
            await link.close()

    async def _sleep(self, seconds: float) -> None:
        """Command backoff and confirmation delays (one place, so tests can see the schedule)."""
        await asyncio.sleep(seconds)

    def _adapter(self, protocol: str) -> MeterAdapter:
        adapter = self._adapters.get(protocol)
        return adapter if adapter is not None else adapter_for(protocol)

    # --- sync wrappers ------------------------------------------------------------------------------------
    def poll_sync(self, gateways: Sequence[GatewaySpec]) -> PollResult:
        """:meth:`poll` in a fresh event loop (for threads without one, e.g. an Odoo cron worker)."""
        return asyncio.run(self._closing(self.poll(gateways)))

    def execute_sync(
        self, gateways: Sequence[GatewaySpec], commands: Sequence[MeterCommand]
    ) -> list[CommandResult]:
        """:meth:`execute` in a fresh event loop."""
        return asyncio.run(self._closing(self.execute(gateways, commands)))

    async def _closing(self, work: Any) -> Any:
        try:
            return await work
        finally:
            await self.close()

    # --- polling ------------------------------------------------------------------------------------------
    async def poll(self, gateways: Sequence[GatewaySpec]) -> PollResult:
        """Read every meter of ``gateways`` once. Never raises for field trouble: it is in ``errors``."""
        started = self._clock()
        runs = [_BusRun(self, gateway, bus) for gateway in gateways for bus in gateway.buses]
        await self._run_all(runs, self._poll_bus)
        result = PollResult(started_at=started, finished_at=self._clock())
        for run in runs:
            result.readings.extend(run.readings)
            result.errors.extend(run.errors)
            result.warnings.extend(run.warnings)
            result.traces.extend(run.traces)
            for meter in run.bus.meters[run.index :]:
                result.errors.append(
                    PollError(
                        run.gateway.key,
                        run.bus.key,
                        meter.key,
                        ErrorKind.CANCELLED,
                        "not read: the poll cycle ran out of time",
                        result.finished_at,
                    )
                )
        result.gateways = self._gateway_states(gateways, runs)
        return result

    @staticmethod
    def _gateway_states(gateways: Sequence[GatewaySpec], runs: Sequence[_BusRun]) -> dict[str, GatewayState]:
        contact: dict[str, datetime | None] = {gateway.key: None for gateway in gateways}
        for run in runs:
            seen = contact[run.gateway.key]
            if run.last_contact is not None and (seen is None or run.last_contact > seen):
                contact[run.gateway.key] = run.last_contact
        return {key: GatewayState(key, last is not None, last) for key, last in contact.items()}

    async def _run_all(self, runs: Sequence[_BusRun], work: Callable[[_BusRun], Any]) -> None:
        """Run ``work(run)`` for every bus concurrently, within ``cycle_timeout``; close every link after."""
        n = len(runs)
        tasks = [
            asyncio.create_task(self._guarded(run, work, self.stagger * i / n if self.stagger else 0.0))
            for i, run in enumerate(runs)
        ]
        if not tasks:
            return
        try:
            _done, pending = await asyncio.wait(tasks, timeout=self.cycle_timeout)
        finally:
            for task in tasks:
                task.cancel()  # no-op for finished tasks; on our own cancellation, stops every bus
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome  # a bug, not field trouble: never swallowed
        del pending

    async def _guarded(self, run: _BusRun, work: Callable[[_BusRun], Any], delay: float = 0.0) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await work(run)
        except BaseException:
            await run.close()
            raise
        if self.keep_links:
            run.release()
        else:
            await run.close()

    def _plan(self, meter: MeterSpec) -> tuple[Any, ReadPlan]:
        cached = self._plans.get(meter)
        if cached is None:
            adapter = self._adapter(meter.model.protocol)
            cached = (adapter, adapter.read_plan(meter))
            if len(self._plans) > 200_000:
                self._plans.clear()
            self._plans[meter] = cached
        return cached

    async def _poll_bus(self, run: _BusRun) -> None:
        meters = run.bus.meters
        timeout = run.gateway.timeout
        tries = 1 + max(0, run.gateway.retries)
        clock = self._clock
        readings = run.readings
        while run.index < len(meters):
            meter = meters[run.index]
            run.meter_key = meter.key
            try:
                adapter, plan = self._plan(meter)
                link = run.link(adapter.link_kind)
            except ConfigError as exc:
                run.error(meter.key, ErrorKind.UNSUPPORTED, str(exc))
                run.index += 1
                continue
            missing: list[str] = []
            try:
                values = await self._read_values(run, link, plan, timeout, tries, missing)
                reading = make_reading(meter.key, run.last_contact or clock(), values)
                if meter.load_events_seen is not None:
                    reading = await self._read_load_events(run, link, meter, reading, timeout, tries)
                readings.append(reading)
                if missing:
                    run.warn(meter.key, missing)
            except EngineError as exc:
                if run.down is not None:
                    message = f"gateway unreachable: {_describe(run.down)}"
                    for rest in meters[run.index :]:
                        run.error(rest.key, ErrorKind.LINK, message)
                    run.index = len(meters)
                    return
                run.error(meter.key, error_kind(exc), _describe(exc))
            run.index += 1

    async def _read_load_events(
        self, run: _BusRun, link: Any, meter: MeterSpec, reading: Reading, timeout: float, tries: int
    ) -> Reading:
        """``reading`` with the meter's load status (``trip_reason``, ``event_count``) and the event records
        since ``meter.load_events_seen``, for a model that holds them (else ``reading`` as it is: no request);
        a model without event records (Modbus maps) gets one record of its trip reason when the count moved
        (:func:`~prepaid_engine.load.params.status_record`).
        Trouble reading them never loses the reading: it is kept without them."""
        model = meter.model
        if not load_params.reads_load_events(model):
            return reading
        try:
            status = await self._read_values(
                run, link, load_params.read_plan(meter, load_params.LOAD_STATUS), timeout, tries
            )
            count, reason = status.get("event_count"), status.get("trip_reason")
            seen = meter.load_events_seen or 0
            names = load_params.new_event_names(model, seen, count)
            records: tuple = ()
            if names:
                plan = load_params.read_plan(meter, names)
                found = await self._read_values(run, link, plan, timeout, tries)
                records = tuple(found[name] for name in names if found.get(name) is not None)
            else:  # a model without event records: the trip reason tells of a moved count
                moved = count is not None and count != seen
                record = load_params.status_record(model, reading.read_at, reason, moved)
                records = (record,) if record is not None else ()
        except EngineError:
            return reading
        return dataclasses.replace(reading, trip_reason=reason, load_event_count=count, load_events=records)

    async def _step(self, run: _BusRun, link: Any, step: Any, timeout: float, tries: int) -> Any:
        """One request with its retries; returns the parsed values (frames) or registers (Modbus)."""
        error: EngineError | None = None
        for _ in range(tries):
            if not link.connected:
                try:
                    await link.connect()
                except LinkError as exc:
                    run.down = exc
                    raise
            try:
                if type(step) is FrameStep:
                    frame = await link.exchange(
                        step.request, timeout=timeout, expect=step.expect, deframer=step.deframer
                    )
                    run.last_contact = self._clock()
                    return step.parse(frame)
                if type(step) is BlockRead:
                    registers = await link.read_block(step.unit, step.table, step.address, step.count)
                    run.last_contact = self._clock()
                    return registers
                if type(step) is BlockWrite:
                    await link.write_registers(step.unit, step.address, step.values)
                    run.last_contact = self._clock()
                    return None
                raise ConfigError(f"unknown step {step!r}")
            except MeterError:
                run.last_contact = self._clock()
                raise
            except RETRYABLE as exc:
                error = exc
        assert error is not None
        raise error

    # --- connection test --------------------------------------------------------------------------------
    def test_connection_sync(self, gateway: GatewaySpec) -> list[BusCheck]:
        """:meth:`test_connection` in a fresh event loop."""
        return asyncio.run(self._closing(self.test_connection(gateway)))

    async def test_connection(self, gateway: GatewaySpec) -> list[BusCheck]:
        """Test every bus of ``gateway`` at once, in about ``connect_timeout + timeout`` seconds at most: open
        the bus's link (its TCP port, or serial device) and, when it opens and the bus has meters, send the
        first meter one request, once (the first of its poll's requests). One :class:`BusCheck` per bus,
        in the gateway's order. Never raises for field trouble. Nothing is read into a reading."""
        runs = [_BusRun(self, gateway, bus) for bus in gateway.buses]
        checks: dict[str, BusCheck] = {}
        bound = gateway.connect_timeout + gateway.timeout + 1.0

        async def work(run: _BusRun) -> None:
            try:
                checks[run.bus.key] = await asyncio.wait_for(self._check_bus(run), bound)
            except TimeoutError:
                checks[run.bus.key] = BusCheck(
                    gateway.key, run.bus.key, False, None, None, f"no answer within {bound:g} s"
                )

        await self._run_all(runs, work)
        return [
            checks.get(bus.key) or BusCheck(gateway.key, bus.key, False, None, None, "not tested")
            for bus in gateway.buses
        ]

    async def _check_bus(self, run: _BusRun) -> BusCheck:
        gateway, bus = run.gateway, run.bus
        meter = bus.meters[0] if bus.meters else None
        try:
            if meter is None:
                kind = "modbus" if Transport(gateway.transport) is Transport.MODBUS_TCP else "framed"
                step = None
            else:
                adapter, plan = self._plan(meter)
                kind, step = adapter.link_kind, plan.steps[0] if plan.steps else None
            link = run.link(kind)
        except ConfigError as exc:
            return BusCheck(gateway.key, bus.key, False, None, None, f"cannot be tested: {_describe(exc)}")
        try:
            await link.connect()
        except LinkError as exc:
            return BusCheck(gateway.key, bus.key, False, None, None, _describe(exc))
        if meter is None or step is None:
            return BusCheck(gateway.key, bus.key, True, None, None, "connected; no meter to ask")
        run.meter_key = meter.key
        try:
            await self._step(run, link, step, gateway.timeout, 1)
        except MeterError as exc:
            return BusCheck(
                gateway.key, bus.key, True, True, meter.key, f"the meter answered: {_describe(exc)}"
            )
        except EngineError as exc:
            return BusCheck(
                gateway.key, bus.key, True, False, meter.key, f"{error_kind(exc)}: {_describe(exc)}"
            )
        return BusCheck(gateway.key, bus.key, True, True, meter.key, "the meter answered")

    # --- commands -----------------------------------------------------------------------------------------
    async def execute(
        self, gateways: Sequence[GatewaySpec], commands: Sequence[MeterCommand]
    ) -> list[CommandResult]:
        """Execute ``commands``, in order per meter, concurrently across buses; one result per command, in
        the order given. Never raises for field trouble: it is in the results."""
        where: dict[str, tuple[GatewaySpec, BusSpec, MeterSpec]] = {}
        for gateway in gateways:
            for bus in gateway.buses:
                for meter in bus.meters:
                    where[meter.key] = (gateway, bus, meter)
        results: list[CommandResult | None] = [None] * len(commands)
        queues: dict[tuple[str, str], tuple[_BusRun, list[tuple[int, MeterCommand, MeterSpec]]]] = {}
        for position, command in enumerate(commands):
            found = where.get(command.meter_key)
            if found is None:
                results[position] = self._result(
                    command,
                    _Outcome(
                        CommandStatus.FAILED,
                        False,
                        0,
                        f"unknown meter {command.meter_key!r}",
                        outcome=CommandOutcome.UNKNOWN_METER,
                    ),
                )
                continue
            gateway, bus, meter = found
            run_queue = queues.get((gateway.key, bus.key))
            if run_queue is None:
                run_queue = queues[(gateway.key, bus.key)] = (_BusRun(self, gateway, bus), [])
            run_queue[1].append((position, command, meter))

        sent: list[int] = [0] * len(commands)  # attempts made so far, for commands the cycle bound cuts off

        async def work(run: _BusRun) -> None:
            for position, command, meter in queues[(run.gateway.key, run.bus.key)][1]:
                run.meter_key = meter.key
                outcome = await self._command(run, meter, command, sent, position)
                results[position] = self._result(command, outcome)

        await self._run_all([run for run, _ in queues.values()], work)
        finished = self._clock()
        out: list[CommandResult] = []
        for position, (command, result) in enumerate(zip(commands, results, strict=True)):
            if result is None:
                tried = sent[position]
                message = "cancelled: the cycle ran out of time" + (
                    f" after {tried} attempt(s); the meter may have executed it"
                    if tried
                    else " before sending"
                )
                result = CommandResult(
                    command.key,
                    CommandStatus.FAILED,
                    False,
                    tried,
                    message,
                    finished,
                    outcome=CommandOutcome.CYCLE_TIME,
                )
            out.append(result)
        return out

    def _result(self, command: MeterCommand, outcome: _Outcome) -> CommandResult:
        values = outcome.values or {}
        return CommandResult(
            key=command.key,
            status=outcome.status,
            confirmed=outcome.confirmed,
            attempts=outcome.attempts,
            message=outcome.message,
            at=self._clock(),
            supply=values.get("supply"),
            balance=values.get("balance"),
            purchase_count=values.get("purchase_count"),
            outcome=str(outcome.outcome),
            error=outcome.error,
            refusal=outcome.refusal,
        )

    def _expired(self, command: MeterCommand, at: datetime | None = None) -> bool:
        return command.expires_at is not None and (at or self._clock()) >= command.expires_at

    async def _command(
        self, run: _BusRun, meter: MeterSpec, command: MeterCommand, sent: list[int], position: int
    ) -> _Outcome:
        if self._expired(command):
            return _Outcome(
                CommandStatus.EXPIRED,
                False,
                0,
                "expired before it could be sent",
                outcome=CommandOutcome.EXPIRED,
            )
        try:
            adapter = self._adapter(meter.model.protocol)
            plan = adapter.command_plan(
                meter,
                command,
                CommandContext(now=self._clock(), master_key=self.master_key, relay_window=self.relay_window),
            )
            link = run.link(adapter.link_kind)
        except EngineError as exc:
            return _Outcome(
                CommandStatus.FAILED,
                False,
                0,
                f"{error_kind(exc)}: {_describe(exc)}",
                outcome=CommandOutcome.UNSUPPORTED,
                error=error_kind(exc),
            )
        timeout = run.gateway.timeout
        tries = 1 + max(0, run.gateway.retries)
        attempts = 0
        last = "not sent"
        last_outcome, last_error = CommandOutcome.NO_ANSWER, None
        note = ""  # what the result message adds (a validity counted on our clock)
        while attempts < max(1, command.attempts):
            if attempts:
                delay = min(self.backoff * 2 ** (attempts - 1), self.backoff_max)
                # Expired before the next attempt is due: said now rather than after the wait.
                expires_first = (
                    command.expires_at is not None
                    and self._clock() + timedelta(seconds=delay) >= command.expires_at
                )
                if not expires_first:
                    await self._sleep(delay)
            else:
                expires_first = False
            if expires_first or self._expired(command):
                return _Outcome(
                    CommandStatus.EXPIRED,
                    False,
                    attempts,
                    f"expired; last attempt: {last}",
                    outcome=CommandOutcome.EXPIRED,
                    error=last_error,
                )
            attempts += 1
            sent[position] = attempts
            duplicate = False
            actions = plan.actions
            if plan.actions_for is not None:
                try:
                    actions, note = await self._attempt_actions(run, link, plan, timeout)
                except EngineError as exc:
                    last = f"{error_kind(exc)}: {_describe(exc)}"
                    last_outcome, last_error = CommandOutcome.NO_ANSWER, error_kind(exc)
                    run.down = None
                    continue
            try:
                for action in actions:
                    await self._step(run, link, action, timeout, 1)
            except MeterError as exc:
                if not _duplicate_is_success(plan, exc):
                    return _noted(
                        _Outcome(
                            CommandStatus.FAILED,
                            False,
                            attempts,
                            f"meter refused: {_describe(exc)}",
                            outcome=CommandOutcome.REFUSED,
                            error=ErrorKind.METER,
                            refusal=tuple(exc.names),
                        ),
                        note,
                    )
                duplicate = True
            except EngineError as exc:
                last = f"{error_kind(exc)}: {_describe(exc)}"
                last_outcome, last_error = CommandOutcome.NO_ANSWER, error_kind(exc)
                run.down = None  # commands retry the connection on their next attempt
                continue
            acked = (
                "duplicate recharge for the purchase count sent (applied before)"
                if duplicate
                else "acknowledged"
            )
            if plan.confirm is None:
                return _noted(
                    _Outcome(
                        CommandStatus.DONE,
                        False,
                        attempts,
                        f"{acked}; this model has no read-back",
                        outcome=CommandOutcome.DUPLICATE if duplicate else CommandOutcome.DONE_UNCONFIRMED,
                    ),
                    note,
                )
            if self.confirm_delay:
                await self._sleep(self.confirm_delay)
            try:
                values = await self._read_values(run, link, plan.confirm, timeout, tries)
            except EngineError as exc:
                last = f"{acked}, read-back failed: {error_kind(exc)}: {_describe(exc)}"
                last_outcome, last_error = CommandOutcome.READBACK_FAILED, error_kind(exc)
                run.down = None
                continue
            if plan.check is not None and plan.check(values):
                outcome = _Outcome(
                    CommandStatus.DONE,
                    True,
                    attempts,
                    f"{acked}; confirmed {plan.expectation}",
                    values,
                    outcome=CommandOutcome.DUPLICATE if duplicate else CommandOutcome.CONFIRMED,
                )
                return _noted(outcome, note)
            last = f"{acked}, but the read-back does not show {plan.expectation}"
            last_outcome, last_error = CommandOutcome.NOT_CONFIRMED, None
        return _noted(
            _Outcome(CommandStatus.FAILED, False, attempts, last, outcome=last_outcome, error=last_error),
            note,
        )

    async def _attempt_actions(
        self, run: _BusRun, link: Any, plan: CommandPlan, timeout: float
    ) -> tuple[tuple[Any, ...], str]:
        """The actions of one attempt of a plan built per attempt (``plan.actions_for``) and its note, from
        what ``plan.prepare`` reads first (a DL/T 645 meter's clock; None when the meter refuses to tell).
        Each of its requests is sent once, like the actions (the attempts are the retries); link trouble
        raises: the attempt failed like any other exchange."""
        values = None
        if plan.prepare is not None:
            try:
                values = await self._read_values(run, link, plan.prepare, timeout, 1)
            except MeterError:
                values = None
        return plan.actions_for(values, self._clock())

    async def _read_values(
        self,
        run: _BusRun,
        link: Any,
        plan: ReadPlan,
        timeout: float,
        tries: int,
        missing: list[str] | None = None,
    ) -> dict:
        """Run ``plan``'s steps in order (each with its retries) and fold the replies ({} without steps).

        With ``missing`` (a poll) and a plan that says which refusals mean "no such data" (``plan.lacks``), a
        step the meter lacks is replaced by its parts (a block's single identifiers) or left out, and the
        identifiers the meter refused are appended to ``missing``; the values the meter did give are kept.
        The meter's refusal is raised only when it answered none of the steps."""
        steps = plan.steps
        replies = []
        for index, step in enumerate(steps):
            try:
                replies.append(await self._step(run, link, step, timeout, tries))
            except MeterError as exc:
                if missing is None or plan.lacks is None or not plan.lacks(exc):
                    raise
                done = list(steps[:index])
                return await self._read_rest(run, link, plan, timeout, tries, missing, done, replies, exc)
        return plan.fold(steps, replies) if replies else {}

    async def _read_rest(
        self,
        run: _BusRun,
        link: Any,
        plan: ReadPlan,
        timeout: float,
        tries: int,
        missing: list[str],
        done: list[Any],
        replies: list[Any],
        refusal: MeterError,
    ) -> dict:
        """:meth:`_read_values` on from the step the meter refused with ``refusal`` (the one after ``done``):
        the meter lacks an identifier. The parts of every step it lacks replace that step (no parts: it is
        left out) and the identifiers it lacks are appended to ``missing``."""
        steps = plan.steps
        todo = [*_instead(plan, steps[len(done)], missing), *steps[len(done) + 1 :]]
        index = 0
        while index < len(todo):
            step = todo[index]
            index += 1
            try:
                replies.append(await self._step(run, link, step, timeout, tries))
            except MeterError as exc:
                if not plan.lacks(exc):
                    raise
                todo[index:index] = _instead(plan, step, missing)
                continue
            done.append(step)
        if not replies:
            raise refusal
        return plan.fold(done, replies)


def _instead(plan: ReadPlan, step: Any, missing: list[str]) -> tuple[Any, ...]:
    """The steps that replace ``step``, which the meter lacks (its parts: a block's single identifiers, a
    Modbus block's fields one by one; none: it is left out), after naming in ``missing`` what it lacks: the
    step's identifiers that the parts do not ask again (a DL/T 645 block identifier, not a Modbus block's
    fields, which the parts read one by one)."""
    parts = plan.parts(step) if plan.parts is not None else ()
    again = {name for part in parts for name in step_identifiers(part)}
    missing.extend(name for name in step_identifiers(step) if name not in again)
    return parts


def _noted(outcome: _Outcome, note: str) -> _Outcome:
    if note:
        outcome.message = f"{outcome.message} ({note})"
    return outcome


def _duplicate_is_success(plan: CommandPlan, exc: MeterError) -> bool:
    """security's rule: a duplicate-recharge answer for the purchase count we sent means "already applied"."""
    if plan.kind is not CommandKind.RECHARGE or plan.purchase_count is None:
        return False
    try:
        return interpret_recharge_reply(plan.purchase_count, exc) is RechargeOutcome.APPLIED
    except MeterError:
        return False


def _describe(exc: BaseException) -> str:
    names = getattr(exc, "names", ())
    text = str(exc) or type(exc).__name__
    if names and not any(name in text for name in names):
        text = f"{text} ({', '.join(names)})"
    return text
