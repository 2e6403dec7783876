"""Anomaly detection: pure detectors over plain inputs (no clock, no I/O, no odoo).

Each detector takes what one meter (or one master meter and its sub-meters) showed and returns ``None`` or a
:class:`Finding` (several for :func:`tamper`) whose ``evidence`` is a plain dict of strings, ready to be
stored as JSON and shown to a building manager. Callers (the addon's daily cron) build the inputs set-based
and decide what to do with the findings; nothing here knows about records.
"""

from .detect import (
    MAD_SCALE,
    DayUse,
    Finding,
    TamperState,
    balance_mismatch,
    expected_meter_balance,
    line_loss,
    not_read,
    spike,
    tamper,
    zero_consumption,
)

__all__ = [
    "MAD_SCALE",
    "DayUse",
    "Finding",
    "TamperState",
    "balance_mismatch",
    "expected_meter_balance",
    "line_loss",
    "not_read",
    "spike",
    "tamper",
    "zero_consumption",
]
