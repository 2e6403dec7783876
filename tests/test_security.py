"""Recharge security: key diversification, retail MAC, recharge payloads, the meter ledger, the reply rule."""

from decimal import Decimal

import pytest
from Crypto.Cipher import DES, DES3
from hypothesis import given
from hypothesis import strategies as st

from prepaid_engine.errors import (
    ConfigError,
    DuplicateRecharge,
    FrameError,
    MeterError,
    RechargeRefused,
    SecurityError,
)
from prepaid_engine.security import (
    RECHARGE_PAYLOAD_LEN,
    RechargeLedger,
    RechargeOrder,
    RechargeOutcome,
    build_recharge,
    diversification_factor,
    diversify,
    interpret_recharge_reply,
    mac,
    outcome_error,
    pad_method2,
    retail_mac,
    verify_recharge,
)

MASTER = bytes.fromhex("0123456789ABCDEF FEDCBA9876543210")
MASTER3 = bytes.fromhex("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123")
METER = "123456789012"


def des(key, block):
    return DES.new(key, DES.MODE_ECB).encrypt(block)


def des_inv(key, block):
    return DES.new(key, DES.MODE_ECB).decrypt(block)


def tdes_ede(key, block):
    """Triple DES built by hand from single DES (E_K1 D_K2 E_K3), independent of DES3."""
    k1, k2 = key[:8], key[8:16]
    k3 = key[16:24] if len(key) == 24 else k1
    return des(k3, des_inv(k2, des(k1, block)))


# ------------------------------------------------------------------------------------------ diversification


def test_diversification_factor_is_the_meter_number_in_bcd_left_padded_to_8_bytes():
    assert diversification_factor("123456789012") == bytes.fromhex("0000123456789012")
    assert diversification_factor("7") == bytes.fromhex("0000000000000007")
    assert diversification_factor(bytes.fromhex("1122334455667788")) == bytes.fromhex("1122334455667788")


@pytest.mark.parametrize("factor", ["12345678901234567", "12a4", "", b"\x01" * 6])
def test_diversification_factor_rejects_what_is_not_a_meter_number(factor):
    with pytest.raises(ConfigError):
        diversification_factor(factor)


def test_diversify_fixed_vector_and_hand_built_triple_des():
    key = diversify(MASTER, METER)
    assert key == bytes.fromhex("F19EAA52F6C389B8 B54D986E749BD20C")
    factor = bytes.fromhex("0000123456789012")
    assert key[:8] == tdes_ede(MASTER, factor)
    assert key[8:] == tdes_ede(MASTER, bytes(b ^ 0xFF for b in factor))


def test_diversify_with_a_three_key_master():
    key = diversify(MASTER3, METER)
    factor = bytes.fromhex("0000123456789012")
    assert key == tdes_ede(MASTER3, factor) + tdes_ede(MASTER3, bytes(b ^ 0xFF for b in factor))
    assert key != diversify(MASTER, METER)


def test_each_meter_gets_its_own_key():
    assert diversify(MASTER, "123456789012") != diversify(MASTER, "123456789013")


@pytest.mark.parametrize("master", [b"", b"\x01" * 8, b"\x01" * 15, b"\x01" * 32, MASTER[:8] * 2])
def test_diversify_rejects_master_keys_that_are_not_two_or_three_key_3des(master):
    with pytest.raises(ConfigError):
        diversify(master, METER)


# ---------------------------------------------------------------------------------------------------- MAC


def test_padding_method_2_always_adds_80_then_zeros():
    assert pad_method2(b"") == bytes.fromhex("8000000000000000")
    assert pad_method2(b"\x01" * 7) == b"\x01" * 7 + b"\x80"
    assert pad_method2(b"\x01" * 8) == b"\x01" * 8 + bytes.fromhex("8000000000000000")


def test_retail_mac_published_vector_icao_9303():
    # ICAO Doc 9303 Part 11, Appendix D (Basic Access Control worked example): ISO/IEC 9797-1 MAC
    # algorithm 3 with padding method 2 over E_IFD under K_MAC gives M_IFD = 5F1448EEA8AD90A7.
    k_mac = bytes.fromhex("7962D9ECE03D1ACD4C76089DCE131543")
    e_ifd = bytes.fromhex("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
    assert retail_mac(k_mac, e_ifd) == bytes.fromhex("5F1448EEA8AD90A7")
    assert mac(k_mac, e_ifd) == bytes.fromhex("5F1448EE")


def test_retail_mac_published_vector_pyemv():
    # pyemv (github.com/knovichikhin/pyemv) tests/test_mac.py: mac_iso9797_3 with K1 = AA.., K2 = BB..,
    # "hello world", padding method 2 -> 2BC2D9EDE0CF31F6.
    key = bytes.fromhex("AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB")
    assert retail_mac(key, b"hello world") == bytes.fromhex("2BC2D9EDE0CF31F6")


def _distinct_halves(key):
    """pycryptodome's DES3 refuses K_L == K_R (parity bits aside): triple DES would collapse to DES."""
    return bytes(b & 0xFE for b in key[:8]) != bytes(b & 0xFE for b in key[8:])


@given(key=st.binary(min_size=16, max_size=16).filter(_distinct_halves), data=st.binary(max_size=80))
def test_retail_mac_equals_des_cbc_then_two_key_3des_on_the_last_block(key, data):
    """Independent computation: single-DES CBC over all but the last block, 2-key 3DES-ECB on the last."""
    padded = pad_method2(data)
    chain = bytes(8)
    for i in range(0, len(padded) - 8, 8):
        chain = des(key[:8], bytes(a ^ b for a, b in zip(chain, padded[i : i + 8], strict=True)))
    last = bytes(a ^ b for a, b in zip(chain, padded[-8:], strict=True))
    expected = tdes_ede(key, last)
    assert retail_mac(key, data) == expected
    assert mac(key, data) == expected[:4]
    assert DES3.new(key, DES3.MODE_ECB).encrypt(last) == expected


@pytest.mark.parametrize("key", [b"", b"\x00" * 8, b"\x00" * 24])
def test_mac_needs_a_16_byte_key(key):
    with pytest.raises(ConfigError):
        mac(key, b"data")


# ------------------------------------------------------------------------------------------------ recharge


ORDER = RechargeOrder(METER, Decimal("100.50"), 8, "000000112233")


def test_recharge_payload_layout_is_exact():
    payload = build_recharge(MASTER, ORDER)
    key = diversify(MASTER, METER)
    amount_count = bytes.fromhex("00002742 00000008")  # 10050 cents, purchase count 8
    customer = bytes.fromhex("000000112233")
    assert len(payload) == RECHARGE_PAYLOAD_LEN == 22
    assert payload == amount_count + mac(key, amount_count) + customer + mac(key, customer + amount_count)


def test_recharge_payload_fixed_vector():
    # Pinned so that any change to the layout, the key derivation or the MAC shows up as a diff.
    assert build_recharge(MASTER, ORDER) == bytes.fromhex(
        "00002742" "00000008" "7B5EC6CD" "000000112233" "AB909665"
    )  # fmt: skip


@given(
    amount=st.integers(1, 0xFFFFFFFF).map(lambda c: Decimal(c).scaleb(-2)),
    count=st.integers(1, 0xFFFFFFFF),
    customer=st.from_regex(r"[0-9]{0,12}", fullmatch=True),
    meter=st.from_regex(r"[0-9]{1,16}", fullmatch=True),
)
def test_recharge_round_trips(amount, count, customer, meter):
    order = RechargeOrder(meter, amount, count, customer)
    assert verify_recharge(MASTER, meter, build_recharge(MASTER, order)) == order


def test_a_flipped_bit_anywhere_fails_verification():
    payload = build_recharge(MASTER, ORDER)
    for bit in range(len(payload) * 8):
        broken = bytearray(payload)
        broken[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SecurityError):
            verify_recharge(MASTER, METER, bytes(broken))


def test_a_payload_for_another_meter_or_master_key_fails():
    payload = build_recharge(MASTER, ORDER)
    with pytest.raises(SecurityError):
        verify_recharge(MASTER, "123456789013", payload)
    with pytest.raises(SecurityError):
        verify_recharge(MASTER3, METER, payload)


@pytest.mark.parametrize("length", [0, 21, 23, 44])
def test_a_payload_of_the_wrong_length_is_a_frame_error(length):
    payload = (build_recharge(MASTER, ORDER) * 2)[:length]
    with pytest.raises(FrameError, match=f"not {length}"):
        verify_recharge(MASTER, METER, payload)
    with pytest.raises(FrameError):
        verify_recharge(MASTER, METER, None)


@pytest.mark.parametrize(
    ("amount", "count", "customer"),
    [
        (Decimal(0), 1, ""),
        (Decimal("-1"), 1, ""),
        (Decimal("1.005"), 1, ""),
        (Decimal("42949672.96"), 1, ""),  # one cent more than 4 bytes hold
        (1.5, 1, ""),
        (Decimal("NaN"), 1, ""),
        (Decimal(1), 0, ""),
        (Decimal(1), 2**32, ""),
        (Decimal(1), True, ""),
        (Decimal(1), 1, "1234567890123"),
        (Decimal(1), 1, "12a"),
    ],
)
def test_recharge_order_rejects_impossible_values(amount, count, customer):
    with pytest.raises(ConfigError):
        RechargeOrder(METER, amount, count, customer)


def test_recharge_order_accepts_the_limits_and_normalises_the_customer_number():
    top = RechargeOrder(METER, Decimal("42949672.95"), 2**32 - 1)
    assert top.cents == 0xFFFFFFFF and top.customer_number == "000000000000"
    assert RechargeOrder(METER, Decimal("1.500"), 1).cents == 150


# ---------------------------------------------------------------------------------------------- the ledger


def order(count, amount="50.00"):
    return RechargeOrder(METER, Decimal(amount), count)


def test_ledger_applies_exactly_previous_plus_one():
    ledger = RechargeLedger(purchase_count=7, balance=Decimal("10.00"))
    assert ledger.apply(order(8)) is RechargeOutcome.APPLIED
    assert (ledger.purchase_count, ledger.balance) == (8, Decimal("60.00"))
    assert ledger.apply(order(9, "0.01")) is RechargeOutcome.APPLIED
    assert (ledger.purchase_count, ledger.balance) == (9, Decimal("60.01"))


def test_ledger_refuses_a_replay_as_duplicate_without_crediting():
    ledger = RechargeLedger(purchase_count=7, balance=Decimal("10.00"))
    assert ledger.apply(order(8)) is RechargeOutcome.APPLIED
    assert ledger.apply(order(8)) is RechargeOutcome.DUPLICATE
    assert ledger.apply(order(3)) is RechargeOutcome.DUPLICATE  # any used count is a replay
    assert (ledger.purchase_count, ledger.balance) == (8, Decimal("60.00"))


def test_ledger_refuses_a_count_jump():
    ledger = RechargeLedger(purchase_count=7, balance=Decimal("10.00"))
    assert ledger.apply(order(10)) is RechargeOutcome.COUNT_ERROR
    assert (ledger.purchase_count, ledger.balance) == (7, Decimal("10.00"))
    assert ledger.apply(order(8)) is RechargeOutcome.APPLIED


def test_ledger_refuses_a_balance_above_the_hoarding_limit():
    ledger = RechargeLedger(purchase_count=0, balance=Decimal("950.00"), hoarding_limit=Decimal("1000.00"))
    assert ledger.apply(order(1, "50.01")) is RechargeOutcome.OVER_HOARDING_LIMIT
    assert (ledger.purchase_count, ledger.balance) == (0, Decimal("950.00"))
    assert ledger.apply(order(1, "50.00")) is RechargeOutcome.APPLIED  # exactly at the limit is allowed
    assert ledger.balance == Decimal("1000.00")


def test_ledger_deducts_into_overdraft():
    ledger = RechargeLedger(purchase_count=1, balance=Decimal("1.00"))
    assert ledger.deduct(Decimal("1.25")) == Decimal("-0.25")
    assert ledger.check(order(2)) is RechargeOutcome.APPLIED and ledger.purchase_count == 1


def test_simulator_path_verify_then_apply_refuses_a_replayed_payload():
    ledger = RechargeLedger(purchase_count=7)
    payload = build_recharge(MASTER, ORDER)
    assert ledger.apply(verify_recharge(MASTER, METER, payload)) is RechargeOutcome.APPLIED
    assert ledger.apply(verify_recharge(MASTER, METER, payload)) is RechargeOutcome.DUPLICATE
    assert ledger.balance == Decimal("100.50")


def test_outcomes_become_the_meter_errors_with_dlt698_codes():
    assert outcome_error(RechargeOutcome.APPLIED) is None
    dup = outcome_error(RechargeOutcome.DUPLICATE)
    assert type(dup) is DuplicateRecharge and (dup.code, dup.names) == (21, ("duplicate_recharge",))
    jump = outcome_error(RechargeOutcome.COUNT_ERROR)
    assert type(jump) is RechargeRefused and (jump.code, jump.names) == (25, ("recharge_count_error",))
    hoard = outcome_error(RechargeOutcome.OVER_HOARDING_LIMIT)
    assert type(hoard) is RechargeRefused and (hoard.code, hoard.names) == (26, ("over_hoarding_limit",))


# ---------------------------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "reply",
    [
        None,
        RechargeOutcome.APPLIED,
        RechargeOutcome.DUPLICATE,
        "duplicate_recharge",
        DuplicateRecharge("dup", code=21),
        MeterError("security error", code=0x02, names=("duplicate_recharge",)),
        MeterError("two bits", names=("recharge_count_error", "duplicate_recharge")),
    ],
)
def test_duplicate_for_a_count_we_sent_is_success(reply):
    assert interpret_recharge_reply(8, reply) is RechargeOutcome.APPLIED
    assert interpret_recharge_reply(8, reply, meter_count=8) is RechargeOutcome.APPLIED


def test_duplicate_is_not_success_when_the_meter_count_is_below_ours():
    dup = DuplicateRecharge("dup", code=21)
    assert interpret_recharge_reply(8, dup, meter_count=7) is RechargeOutcome.COUNT_ERROR


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (RechargeOutcome.COUNT_ERROR, RechargeOutcome.COUNT_ERROR),
        (RechargeRefused("jump", names=("recharge_count_error",)), RechargeOutcome.COUNT_ERROR),
        (RechargeRefused("hoard", names=("over_hoarding_limit",)), RechargeOutcome.OVER_HOARDING_LIMIT),
        (outcome_error(RechargeOutcome.OVER_HOARDING_LIMIT), RechargeOutcome.OVER_HOARDING_LIMIT),
    ],
)
def test_refusals_stay_refusals(reply, expected):
    assert interpret_recharge_reply(8, reply) is expected


def test_other_meter_errors_are_raised_unchanged():
    error = MeterError("wrong password", code=0x04, names=("unauthorised",))
    with pytest.raises(MeterError) as caught:
        interpret_recharge_reply(8, error)
    assert caught.value is error


@pytest.mark.parametrize("count", [0, -1, 2**32, True, "8"])
def test_the_rule_needs_a_real_sent_count(count):
    with pytest.raises(ConfigError):
        interpret_recharge_reply(count, None)


def test_the_rule_refuses_a_reply_it_cannot_read():
    with pytest.raises(ConfigError):
        interpret_recharge_reply(8, "maybe")


def test_retried_recharge_whose_first_answer_was_lost_is_credited_once():
    """End to end on the meter side: attempt 1 applied but its answer lost; attempt 2 says duplicate."""
    ledger = RechargeLedger(purchase_count=7, balance=Decimal(0))
    payload = build_recharge(MASTER, ORDER)
    first = ledger.apply(verify_recharge(MASTER, METER, payload))  # the reply never reaches us
    second = ledger.apply(verify_recharge(MASTER, METER, payload))
    assert (first, second) == (RechargeOutcome.APPLIED, RechargeOutcome.DUPLICATE)
    reply = outcome_error(second)
    assert interpret_recharge_reply(ORDER.purchase_count, reply, meter_count=ledger.purchase_count) is (
        RechargeOutcome.APPLIED
    )
    assert ledger.balance == Decimal("100.50")
