"""Stream deframing shared by the DL/T 645 and CJ/T 188 codecs (sans-I/O).

Both protocols frame as ``FE.. 68 <header> L DATA CS 16``: any number of ``FE`` wake-up bytes, a ``68``
start byte, a fixed header that holds the address and ends with the length byte ``L``, ``L`` data bytes, a
checksum (sum of every byte from the start byte through the last data byte, mod 256) and ``16``.
A :class:`Layout` says where the fields sit; :class:`StreamDeframer` cuts a byte stream into raw frames:

- bytes before a start byte (``FE`` preambles, line noise) are dropped;
- a *candidate* is a ``68`` whose header is plausible: every address byte BCD or ``AA``, the second ``68``
  where the layout has one, a known control code where the layout lists them, ``L`` within the limit;
- an incomplete candidate is kept until more bytes arrive, unless a complete, valid frame already sits later
  in the buffer (then the candidate was noise and is skipped, so one false ``68`` cannot hide a reply);
- a complete candidate without the ``16`` end byte is noise: its start byte is dropped and the scan resumes
  one byte later; so is a valid candidate that wholly contains another valid frame (a stray ``68`` just
  before a real frame can pass every test: the inner frame is the real one);
- a complete candidate with the ``16`` but a wrong checksum raises :class:`ChecksumError`. Only its start
  byte is consumed, so the next call resumes inside it: a real frame hidden behind a false ``68`` is never
  lost, and a genuinely corrupted frame costs exactly one error in practice;
- the buffer is bounded: after :meth:`StreamDeframer.next_raw` returns ``None`` it holds less than one
  maximal frame, and :meth:`StreamDeframer.feed` never lets it grow beyond ``max_buffer`` (the oldest bytes
  are discarded and the next call raises a :class:`FrameError` saying how many).

The deframer raises nothing but :class:`FrameError` and its subclasses. The frame helpers the codecs share
live here too: :func:`seal` (preamble, CS and ``16`` around a header and data), :func:`unwrap` (one frame
checked against its layout), :class:`FrameDeframer` (a deframer that returns decoded frames),
:func:`reply_predicate` and :func:`check_reply_message` (the poller's reply checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from ..errors import AddressError, ChecksumError, ConfigError, FrameError, UnexpectedReply
from .bcd import ADDRESS_BYTE_VALUES as _ADDRESS_DELETE
from .bcd import address_matches

START = 0x68
END = 0x16
PREAMBLE = 0xFE
# control byte of both protocols: D7 direction (1 = reply), D6 abnormal reply; the function mask differs
DIRECTION = 0x80
ABNORMAL = 0x40

_FE = bytes((PREAMBLE,))
PREAMBLES = tuple(_FE * n for n in range(9))


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a framed protocol keeps its fields (indexes from the start byte)."""

    name: str
    length_at: int  # index of the L byte; DATA starts right after it
    address_from: int  # first address byte
    address_to: int  # one past the last address byte
    second_start: int | None = None  # index of a second 0x68 (DL/T 645: 7), None if the layout has none
    max_data: int = 255
    # a layout with a weak header (CJ/T 188 has no second 68) also names its control codes: the byte at
    # ``control_at`` must be one of ``controls``
    control_at: int | None = None
    controls: frozenset[int] | None = None

    @property
    def header(self) -> int:
        """Bytes from the start byte through L."""
        return self.length_at + 1

    @property
    def max_frame(self) -> int:
        return self.header + self.max_data + 2


def frame_checksum(frame: bytes | bytearray | memoryview) -> int:
    return sum(frame) & 0xFF


def check_preamble(preamble: int) -> None:
    if not 0 <= preamble < len(PREAMBLES):
        raise ConfigError(f"preamble of {preamble} FE bytes is out of range 0..{len(PREAMBLES) - 1}")


def byte_field(value: int, what: str) -> bytes:
    """One byte field (SER, ERR, seq) as bytes; :class:`ConfigError` for anything but an int 0..255."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ConfigError(f"{what} {value!r} is not a byte")
    return bytes((value,))


def seal(body: bytes, preamble: int) -> bytes:
    """The wire bytes of a frame: ``preamble`` x FE, ``body`` (start byte through the last data byte), CS,
    16."""
    check_preamble(preamble)
    return PREAMBLES[preamble] + body + bytes((sum(body) & 0xFF, END))


def unwrap(buf: bytes | bytearray | memoryview, layout: Layout) -> bytes:
    """Exactly one frame of ``layout`` (any number of FE before it, nothing after), start byte through 16.

    :class:`ChecksumError` for a bad CS, else :class:`FrameError`.
    """
    name = layout.name
    if not isinstance(buf, bytes | bytearray | memoryview):
        raise FrameError(f"a {name} frame is bytes, not {type(buf).__name__}")
    body = bytes(buf).lstrip(_FE)
    n = len(body)
    smallest = layout.length_at + 3
    if n < smallest:
        raise FrameError(f"{name} frame too short ({n} bytes): {body.hex(' ')}")
    second = layout.second_start
    if second is None:
        if body[0] != START:
            raise FrameError(f"{name} frame does not start with 68: {body.hex(' ')}")
    elif body[0] != START or body[second] != START:
        raise FrameError(f"{name} frame without 68 .. 68 header: {body.hex(' ')}")
    length = body[layout.length_at]
    if length > layout.max_data:
        raise FrameError(f"{name} data length {length} exceeds {layout.max_data}")
    if n != length + smallest:
        raise FrameError(f"{name} frame of {n} bytes, L={length} needs {length + smallest}: {body.hex(' ')}")
    if body[-1] != END:
        raise FrameError(f"{name} frame does not end with 16: {body.hex(' ')}")
    checksum = sum(body[:-2]) & 0xFF
    if checksum != body[-2]:
        raise ChecksumError(f"{name} checksum {body[-2]:02x} != computed {checksum:02x}: {body.hex(' ')}")
    return body


class StreamDeframer:
    """Cuts a byte stream into raw frames of one :class:`Layout` (see the module docstring).

    ``feed(data)`` appends bytes; ``next_raw()`` returns the next complete, checksum-valid frame (start byte
    through ``16``, preamble excluded) or ``None`` when more bytes are needed. Protocol modules wrap it to
    return decoded frames. Construction is cheap: links make one per exchange.
    """

    __slots__ = ("_buf", "_layout", "_overflow", "max_buffer")

    def __init__(self, layout: Layout, max_buffer: int = 8192):
        if max_buffer < layout.max_frame:
            raise FrameError(f"max_buffer {max_buffer} is below one {layout.name} frame ({layout.max_frame})")
        self._layout = layout
        self._buf = bytearray()
        self._overflow = 0
        self.max_buffer = max_buffer

    @property
    def buffered(self) -> int:
        """How many bytes are held (an incomplete frame, or bytes not yet scanned)."""
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()
        self._overflow = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes | bytearray):
            if not isinstance(data, memoryview):
                raise FrameError(f"a deframer is fed bytes, not {type(data).__name__}")
            data = data.tobytes()
        buf = self._buf
        if buf:
            buf += data
        else:
            # fast path: skip leading noise and preambles without copying them
            start = data.find(START)
            if start < 0:
                return
            buf += data[start:] if start else data
        if len(buf) > self.max_buffer:
            excess = len(buf) - self.max_buffer
            del buf[:excess]
            self._overflow += excess

    def next_raw(self) -> bytes | None:
        if self._overflow:
            lost, self._overflow = self._overflow, 0
            raise FrameError(f"{self._layout.name} deframer buffer overflow: {lost} byte(s) discarded")
        buf = self._buf
        layout = self._layout
        length_at = layout.length_at
        second = layout.second_start
        address_from = layout.address_from
        address_to = layout.address_to
        max_data = layout.max_data
        controls = layout.controls
        control_at = layout.control_at
        smallest = length_at + 3
        while True:
            i = buf.find(START)
            if i:
                if i < 0:
                    buf.clear()
                    return None
                del buf[:i]
            n = len(buf)
            if n <= length_at:  # header incomplete: reject early what can already be rejected
                if _check_header(buf, 0, n, layout) < 0:
                    del buf[0]
                    continue
                return None
            length = buf[length_at]
            if (
                (second is not None and buf[second] != START)
                or length > max_data
                or buf[address_from:address_to].translate(None, _ADDRESS_DELETE)
                or (controls is not None and buf[control_at] not in controls)
            ):
                del buf[0]  # not a candidate
                continue
            total = length_at + length + 3
            if n < total:
                later = _later_frame(buf, 1, layout)
                if later < 0:
                    return None
                del buf[:later]
                continue
            if buf[total - 1] != END:
                del buf[0]
                continue
            checksum = sum(buf[: total - 2]) & 0xFF
            if checksum != buf[total - 2]:
                frame = bytes(buf[:total])
                del buf[0]
                raise ChecksumError(
                    f"{layout.name} checksum {frame[-2]:02x} != computed {checksum:02x} in {frame.hex(' ')}"
                )
            if total >= 2 * smallest and _inner_frame(buf, total, layout):
                del buf[0]  # a stray 68 in front of a real frame
                continue
            raw = bytes(buf[:total])
            del buf[:total]
            return raw

    def __iter__(self) -> Iterator[bytes]:
        while (raw := self.next_raw()) is not None:
            yield raw


def _check_header(buf: bytearray, at: int, n: int, layout: Layout) -> int:
    """-1: the start byte at ``at`` is not a candidate; 0: header not complete yet; 1: plausible header."""
    second = layout.second_start
    if second is not None and at + second < n and buf[at + second] != START:
        return -1
    control_at = layout.control_at
    if control_at is not None and at + control_at < n and buf[at + control_at] not in layout.controls:
        return -1
    end = min(n, at + layout.address_to)
    lo = at + layout.address_from
    if end > lo and buf[lo:end].translate(None, _ADDRESS_DELETE):
        return -1
    if at + layout.length_at < n:
        if buf[at + layout.length_at] > layout.max_data:
            return -1
        return 1
    return 0


def _later_frame(buf: bytearray, start: int, layout: Layout) -> int:
    """Index of the first complete, valid frame at or after ``start``; -1 if there is none."""
    n = len(buf)
    header = layout.header
    i = buf.find(START, start)
    while i >= 0:
        if n - i < header + 2:
            return -1
        if _frame_at(buf, i, n, layout):
            return i
        i = buf.find(START, i + 1)
    return -1


def _inner_frame(buf: bytearray, total: int, layout: Layout) -> bool:
    """Whether a complete, valid frame starts after index 0 and ends within the first ``total`` bytes."""
    header = layout.header
    i = buf.find(START, 1, total - header - 1)
    while i >= 0:
        if _frame_at(buf, i, total, layout):
            return True
        i = buf.find(START, i + 1, total - header - 1)
    return False


def _frame_at(buf: bytearray, at: int, limit: int, layout: Layout) -> bool:
    """Whether a complete, valid frame starts at ``at`` and ends within the first ``limit`` bytes."""
    if _check_header(buf, at, limit, layout) <= 0:
        return False
    end = at + layout.header + buf[at + layout.length_at] + 2
    return end <= limit and buf[end - 1] == END and (sum(buf[at : end - 2]) & 0xFF) == buf[end - 2]


FrameT = TypeVar("FrameT")


class FrameDeframer(StreamDeframer, Generic[FrameT]):
    """A :class:`StreamDeframer` of one protocol that returns decoded frames, h11-style.

    Subclasses set ``layout`` and ``frame_of`` (``staticmethod``: validated wire bytes -> frame).
    ``feed(data)``; ``next_frame()`` -> frame or ``None`` (needs more bytes); ``for frame in deframer``.
    """

    __slots__ = ()
    layout: ClassVar[Layout]
    frame_of: Callable[[bytes], Any]

    def __init__(self, max_buffer: int = 8192):
        StreamDeframer.__init__(self, self.layout, max_buffer)

    def next_frame(self) -> FrameT | None:
        raw = self.next_raw()
        return None if raw is None else self.frame_of(raw)

    def __iter__(self) -> Iterator[FrameT]:  # type: ignore[override]
        while (frame := self.next_frame()) is not None:
            yield frame


# --- reply checks (the poller's side) --------------------------------------------------------------
def reply_predicate(
    expect_address: str, function: int, di_wire: bytes | None, function_mask: int
) -> Callable[[Any], bool]:
    """A cheap predicate for a link's ``expect``: a reply frame from ``expect_address`` (``AA`` bytes match
    any) to ``function`` (under ``function_mask``) whose data starts with ``di_wire`` when given (abnormal
    replies always pass). ``di_wire`` is compared with the frame's de-scrambled data."""
    function &= function_mask
    size = len(di_wire) if di_wire is not None else 0

    def expect(frame: Any) -> bool:
        control = frame.control
        if not control & DIRECTION or control & function_mask != function:
            return False
        if frame.address != expect_address and not address_matches(expect_address, frame.address):
            return False
        if di_wire is not None and not control & ABNORMAL:
            return frame.data[:size] == di_wire
        return True

    return expect


def check_reply_message(
    message: object,
    reply_type: type,
    expect_address: str,
    expect_di: str | None,
    function: int | None,
    raise_error: Callable[[object], None],
    function_mask: int,
):
    """The checks of a codec's ``parse_reply`` on a decoded message: :class:`UnexpectedReply` for a request
    (an echo), a reply to another ``function`` or data identifier, :class:`AddressError` for another meter;
    ``raise_error`` raises the meter's refusal. Returns the message."""
    if not isinstance(message, reply_type):
        raise UnexpectedReply(f"expected a reply, got the request {message!r}")
    address = message.address  # type: ignore[attr-defined]
    if address != expect_address and not address_matches(expect_address, address):
        raise AddressError(f"reply from meter {address}, expected {expect_address}")
    got = message.function  # type: ignore[attr-defined]
    if function is not None and got != function & function_mask:
        raise UnexpectedReply(f"reply to function {got:02X}, expected {function & function_mask:02X}")
    raise_error(message)
    if expect_di is not None:
        di = getattr(message, "di", None)
        if di is not None and di != expect_di.upper():
            raise UnexpectedReply(f"reply for DI {di}, expected {expect_di.upper()}")
    return message
