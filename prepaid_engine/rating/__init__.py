"""Rating: tariffs (flat, time-of-use, tiered, free allowance) priced over consumption intervals.

Pure Python and exact: quantities and money are ``Decimal``, nothing is rounded but the charge, and charges
telescope over a settlement cycle. The Odoo billing addon turns its tariff records into :class:`Tariff`,
its readings into :class:`Register` (or intervals directly), and writes each :class:`Rated` to the ledger.

- :mod:`.tariff` -- :class:`Tariff`, bands, validation, per-meter overrides;
- :mod:`.interval` -- :func:`consumption` (roll-over, replacement, band registers) and :class:`Interval`;
- :mod:`.periods` -- DST-safe time-of-use period tables;
- :mod:`.engine` -- :class:`CycleState`, :func:`rate`, :func:`rate_cycle`.

Settlement cycles are in :mod:`prepaid_engine.calendar`.
"""

from .engine import CycleState, Line, LineKind, Rated, rate, rate_cycle
from .interval import ConsumptionError, Interval, Register, Replacement, consumption
from .tariff import BANDS, MAX_PERIODS, Band, BandPrices, Bands, Tariff, TariffKind, period_start

__all__ = [
    "BANDS",
    "MAX_PERIODS",
    "Band",
    "BandPrices",
    "Bands",
    "ConsumptionError",
    "CycleState",
    "Interval",
    "Line",
    "LineKind",
    "Rated",
    "Register",
    "Replacement",
    "Tariff",
    "TariffKind",
    "consumption",
    "period_start",
    "rate",
    "rate_cycle",
]
