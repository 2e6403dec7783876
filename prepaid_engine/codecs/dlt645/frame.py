"""DL/T 645 frame layer: ``FE.. 68 A0..A5 68 C L DATA CS 16`` (both editions share it).

:class:`Frame` ``(address, control, data)`` holds the *de-scrambled* data (the wire carries every data byte
+ 0x33) and, when decoded, the wire bytes in ``raw``. ``encode_frame(frame, preamble=4)`` /
``decode_frame(buf)`` convert one frame (``decode_frame`` accepts any number of ``FE`` before it and nothing
after it). CS is the sum from the first ``68`` to the last data byte, mod 256; ``L <= 200``. Addresses are
12-digit strings as printed on the meter (``"123456789012"``), with ``"AA"`` wildcard bytes (:mod:`..bcd`).
:class:`Deframer` turns a byte stream into frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError
from ..bcd import DLT645_BROADCAST, DLT645_WILDCARD, address_encoder, decode_address
from ..framing import ABNORMAL, DIRECTION, FrameDeframer, Layout, seal, unwrap

ADDRESS_BYTES = 6
BROADCAST = DLT645_BROADCAST
WILDCARD = DLT645_WILDCARD
MAX_DATA = 200
LAYOUT = Layout("DL/T 645", length_at=9, address_from=1, address_to=7, second_start=7, max_data=MAX_DATA)

ADD33 = bytes((b + 0x33) & 0xFF for b in range(256))
SUB33 = bytes((b - 0x33) & 0xFF for b in range(256))

# control byte: D7 direction (1 = reply, DIRECTION), D6 abnormal reply (ABNORMAL), D5 more frames follow,
# D4..D0 function
MORE = 0x20
FUNCTION = 0x1F


@dataclass(frozen=True, slots=True)
class Frame:
    """One DL/T 645 frame; ``data`` is de-scrambled, ``raw`` the wire bytes when it was decoded."""

    address: str
    control: int
    data: bytes
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def is_reply(self) -> bool:
        return bool(self.control & DIRECTION)

    @property
    def function(self) -> int:
        return self.control & FUNCTION

    @property
    def abnormal(self) -> bool:
        return self.control & (DIRECTION | ABNORMAL) == DIRECTION | ABNORMAL

    def encode(self, preamble: int = 4) -> bytes:
        return encode_frame(self, preamble)


address_bytes = address_encoder(ADDRESS_BYTES)


def encode_frame(frame: Frame, preamble: int = 4) -> bytes:
    """The wire bytes of ``frame``: ``preamble`` x FE, header, data + 0x33, CS, 16."""
    data = frame.data
    if len(data) > MAX_DATA:
        raise ConfigError(f"DL/T 645 data is at most {MAX_DATA} bytes, not {len(data)}")
    control = frame.control
    if not 0 <= control <= 0xFF:
        raise ConfigError(f"control code {control!r} is not a byte")
    body = b"\x68" + address_bytes(frame.address) + bytes((0x68, control, len(data))) + data.translate(ADD33)
    return seal(body, preamble)


def decode_frame(buf: bytes | bytearray | memoryview) -> Frame:
    """Exactly one frame (any number of FE before it). ``ChecksumError`` for a bad CS, else ``FrameError``."""
    if isinstance(buf, Frame):
        return buf
    return _frame_of(unwrap(buf, LAYOUT))


def _frame_of(body: bytes) -> Frame:
    """A Frame from validated wire bytes (start byte through 16)."""
    return Frame(decode_address(body[1:7]), body[8], body[10:-2].translate(SUB33), body)


class Deframer(FrameDeframer[Frame]):
    """Stream deframer for DL/T 645 (2007 and 1997 share the framing), h11-style.

    ``feed(data)``; ``next_frame()`` -> :class:`Frame` or ``None`` (needs more bytes); ``for frame in
    deframer``. Strips any number of FE, resynchronises on a 68 with a second 68 seven bytes later, skips
    garbage, keeps partial frames, yields several frames from one chunk and bounds its buffer
    (:mod:`.framing`). A complete frame with a bad CS raises :class:`ChecksumError`, and the next call
    continues after it. Raises nothing but :class:`FrameError` and its subclasses.
    """

    __slots__ = ()
    layout = LAYOUT
    frame_of = staticmethod(_frame_of)
