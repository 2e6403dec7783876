"""Stream deframers (DL/T 645 2007/1997 and CJ/T 188): fuzzing with 100,000 seeded random and mutated inputs
per deframer (the engine of ``scripts/fuzz_deframers.py``), plus the behaviours the links rely on, case by
case: frames split at every position, concatenated, embedded in garbage, checksum errors that do not stop the
stream, and a bounded buffer."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from prepaid_engine.codecs import cjt188, dlt645, dlt645_1997
from prepaid_engine.errors import ChecksumError, FrameError

FUZZ_CASES = 100_000
SEED = 20251231


def _load_fuzzer():
    path = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_deframers.py"
    spec = importlib.util.spec_from_file_location("fuzz_deframers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


fuzz_deframers = _load_fuzzer()

DLT_FRAMES = [
    dlt645.read("123456789012", "00010000"),
    bytes.fromhex("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16"),
    dlt645.relay("123456789012", dlt645.RelayCode.TRIP, datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
    dlt645.read_address(),
    dlt645_1997.read("000000001101", "901F"),
    dlt645.encode(dlt645.ReadReply("000000000001", "0001FF00", bytes(200 - 4), more=True)),
]
CJT_FRAMES = [
    cjt188.read("12345678901234"),
    cjt188.encode(
        cjt188.FlowReply(
            0x10, "01345678901234", Decimal("12.34"), Decimal("10"), datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        ),
        preamble=4,
    ),
    cjt188.valve("00000000000001", False, di_order="lsb", preamble=0),
    cjt188.read_address(),
    cjt188.encode_frame(cjt188.Frame(0x10, "00000000000002", 0x81, bytes(255))),
]
CASES = [
    pytest.param(dlt645.Deframer, DLT_FRAMES, id="dlt645"),
    pytest.param(cjt188.Deframer, CJT_FRAMES, id="cjt188"),
]


def _drain(deframer, errors: list | None = None) -> list[bytes]:
    """Every frame the deframer yields now; package errors are collected (anything else propagates)."""
    out = []
    while True:
        try:
            frame = deframer.next_frame()
        except FrameError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if frame is None:
            return out
        out.append(frame.raw)


# --- fuzzing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", sorted(fuzz_deframers.TARGETS))
def test_fuzzed_streams_raise_only_package_errors_and_lose_no_frame(protocol):
    stats = fuzz_deframers.fuzz(protocol, FUZZ_CASES, SEED)
    assert stats.escapes == []
    assert stats.failures == []
    assert stats.cases == FUZZ_CASES
    assert stats.kinds["random"] + stats.kinds["mutated"] > FUZZ_CASES // 2
    assert stats.frames_embedded > 50_000
    # every embedded frame comes out, unless the noise formed a valid frame overlapping it (then the bytes
    # have two valid readings; the script counts those apart, and they must stay rare)
    assert stats.frames_recovered + stats.frames_ambiguous == stats.frames_embedded
    assert stats.frames_ambiguous <= 5
    assert stats.checksum_errors > 0  # corrupted frames were seen, reported, and the stream went on
    assert stats.max_buffered < fuzz_deframers.TARGETS[protocol].max_frame


def test_fuzz_script_reports_success_with_exit_status_zero(capsys):
    assert fuzz_deframers.main(["--iterations", "2000", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["cjt188", "dlt645"]
    assert all("escapes=0 failures=0" in line for line in lines)


def test_fuzz_engine_notices_a_deframer_that_raises_a_foreign_error():
    class Broken(dlt645.Deframer):
        __slots__ = ()

        def next_frame(self):
            raise ValueError("not a package error")

    target = fuzz_deframers.TARGETS["dlt645"]
    broken = fuzz_deframers.Target(
        "broken", Broken, target.max_frame, target.make_frame, target.decode_frame, ()
    )
    stats = fuzz_deframers.Stats("broken")
    rng = fuzz_deframers.random.Random(1)
    fuzz_deframers.run_case(broken, fuzz_deframers.Pools(broken, rng, frames=8), rng, stats, set())
    assert len(stats.escapes) == 1 and "ValueError" in stats.escapes[0]
    assert not stats.ok


# --- frames split, concatenated, embedded ---------------------------------------------------------
@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_frame_split_at_every_position_comes_out_once_and_exact(make, frames):
    for wire in frames:
        for cut in range(len(wire) + 1):
            deframer = make()
            deframer.feed(wire[:cut])
            first = _drain(deframer)
            deframer.feed(wire[cut:])
            assert first + _drain(deframer) == [wire.lstrip(b"\xfe")], cut


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_frame_fed_byte_by_byte_comes_out_exact(make, frames):
    deframer = make()
    got = []
    for wire in frames:
        for i in range(len(wire)):
            deframer.feed(wire[i : i + 1])
            got += _drain(deframer)
    assert got == [wire.lstrip(b"\xfe") for wire in frames]
    assert deframer.buffered == 0


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_concatenated_frames_in_one_chunk_all_come_out_in_order(make, frames):
    stream = b"".join(frames * 10)
    deframer = make()
    deframer.feed(stream)
    assert [frame.raw for frame in deframer] == [wire.lstrip(b"\xfe") for wire in frames * 10]


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_frames_embedded_in_garbage_with_false_start_bytes_come_out(make, frames):
    garbage = [
        b"\x00\x01\x02",
        b"\x68",  # a lone start byte
        b"\x68\x12\x90\x78\x56\x34\x12\x68\x91",  # a header cut short
        b"\x68\x99\x99\x99\x99\x99\x99\x68\x11\xc8\x33",  # announces 200 data bytes that never come
        b"\x68\x10\x99\x99\x99\x99\x99\x99\x99\x81\xff",  # the CJ/T 188 equivalent
        b"\xfe\xfe\x16\x16\x68\x68\x68",
    ]
    stream = b"".join(g + f for g, f in zip(garbage, frames * 2, strict=False))
    deframer = make()
    errors: list[FrameError] = []
    deframer.feed(stream)
    got = _drain(deframer, errors)
    expected = [f.lstrip(b"\xfe") for f in (frames * 2)[: len(garbage)]]
    assert got == expected
    assert all(isinstance(e, ChecksumError) for e in errors)


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_false_start_announcing_a_long_frame_does_not_hide_the_reply(make, frames):
    reply = frames[1].lstrip(b"\xfe")
    false_start = b"\x68" + reply[1:9] + b"\x68" * 2 + b"\xc8"  # a plausible header, L = 200
    deframer = make()
    deframer.feed(false_start + reply)
    assert _drain(deframer) == [reply]  # no need to wait for 200 more bytes


def _wrapped_in_a_false_frame(real: bytes, layout) -> bytes:
    """A stray 68 in front of ``real`` that, with the bytes after it, passes every test of a frame itself."""
    body = b"\x68" + real
    total = layout.length_at + body[layout.length_at] + 3
    body += bytes(range(total - 2 - len(body)))
    return body + bytes((sum(body) & 0xFF, 0x16))


@pytest.mark.parametrize(
    ("codec", "real"),
    [
        pytest.param(dlt645, dlt645.read("680000000001", "00010000", preamble=0), id="dlt645"),
        pytest.param(cjt188, CJT_FRAMES[1].lstrip(b"\xfe"), id="cjt188"),
    ],
)
def test_a_stray_68_that_forms_a_valid_frame_around_the_real_one_is_skipped(codec, real):
    wire = _wrapped_in_a_false_frame(real, codec.LAYOUT)
    assert codec.decode_frame(wire).raw == wire  # the false frame passes every test on its own
    deframer = codec.Deframer()
    deframer.feed(wire)
    assert _drain(deframer) == [real]


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_bad_checksum_is_reported_once_and_the_next_frame_still_comes_out(make, frames):
    bad = bytearray(frames[1])
    bad[-2] ^= 0x5A
    deframer = make()
    deframer.feed(bytes(bad) + frames[2])
    with pytest.raises(ChecksumError):
        deframer.next_frame()
    assert _drain(deframer) == [frames[2].lstrip(b"\xfe")]


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_any_number_of_fe_is_stripped(make, frames):
    wire = frames[0].lstrip(b"\xfe")
    deframer = make()
    deframer.feed(b"\xfe" * 1000 + wire)
    assert _drain(deframer) == [wire]


# --- bounded buffer -------------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "frames"), CASES)
def test_garbage_without_a_start_byte_is_dropped_at_once(make, frames):
    deframer = make()
    for _ in range(100):
        deframer.feed(bytes(range(0x69, 0x100)) * 4)
        assert deframer.buffered == 0
        assert deframer.next_frame() is None


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_partial_frame_is_kept_and_the_buffer_stays_below_one_frame(make, frames):
    deframer = make()
    for wire in frames:
        deframer.feed(wire[:-1])
        assert deframer.next_frame() is None
        assert deframer.buffered < make.layout.max_frame
        deframer.feed(wire[-1:])
        assert deframer.next_frame().raw == wire.lstrip(b"\xfe")
        assert deframer.buffered == 0


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_overflow_discards_the_oldest_bytes_reports_it_and_continues(make, frames):
    deframer = make(max_buffer=1024)
    deframer.feed(b"\x68" * 5000)  # start bytes only: nothing can be dropped as noise
    assert deframer.buffered <= 1024
    with pytest.raises(FrameError, match="overflow"):
        deframer.next_frame()
    deframer.clear()
    deframer.feed(frames[0])
    assert _drain(deframer) == [frames[0].lstrip(b"\xfe")]


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_feeding_something_else_than_bytes_is_a_frame_error(make, frames):
    deframer = make()
    with pytest.raises(FrameError):
        deframer.feed("68 16")
    deframer.feed(memoryview(frames[0]))
    assert _drain(deframer) == [frames[0].lstrip(b"\xfe")]


@pytest.mark.parametrize(("make", "frames"), CASES)
def test_a_buffer_smaller_than_one_frame_is_refused(make, frames):
    with pytest.raises(FrameError):
        make(max_buffer=100)
