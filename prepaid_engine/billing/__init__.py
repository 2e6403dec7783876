"""Billing arithmetic: common-area apportionment, fees, statements. Pure, exact, no I/O, never imports odoo.

- :mod:`.money` -- amounts as whole precision steps, the one rounding rule (half away from zero);
- :mod:`.apportion` -- :func:`apportion`, largest-remainder shares that add up to the cost exactly;
- :mod:`.rules` -- :func:`apportion_common`: a common meter's cost (and a master meter's loss) shared over
  units by manual coefficients, consumption share, floor area, or fixed amounts;
- :mod:`.fees` -- :func:`fee_charges`: a fee item's periods on a settlement calendar (monthly, quarterly,
  yearly, one-off), keyed for uniqueness, and each period's amount (fixed, per m2, per quantity; prorated);
- :mod:`.statement` -- :func:`statement` (sections, usage per utility, opening + lines = closing) and
  :func:`compare` / :func:`compare_statements` (month over month).
"""

from .apportion import apportion
from .fees import (
    ONE_OFF_KEY,
    AmountKind,
    BillingPeriod,
    FeeCharge,
    FeeItem,
    Frequency,
    Timing,
    billing_periods,
    fee_charges,
    period_charge,
    period_containing,
)
from .money import CENT, round_half_up
from .rules import (
    Apportionment,
    ApportionmentLine,
    ApportionmentRule,
    CoefficientSource,
    MeterLoss,
    UnitBasis,
    apportion_common,
    meter_loss,
)
from .statement import (
    Change,
    EntryKind,
    Section,
    Statement,
    StatementComparison,
    StatementEntry,
    UtilityUsage,
    compare,
    compare_statements,
    statement,
)

__all__ = [
    "CENT",
    "ONE_OFF_KEY",
    "AmountKind",
    "Apportionment",
    "ApportionmentLine",
    "ApportionmentRule",
    "BillingPeriod",
    "Change",
    "CoefficientSource",
    "EntryKind",
    "FeeCharge",
    "FeeItem",
    "Frequency",
    "MeterLoss",
    "Section",
    "Statement",
    "StatementComparison",
    "StatementEntry",
    "Timing",
    "UnitBasis",
    "UtilityUsage",
    "apportion",
    "apportion_common",
    "billing_periods",
    "compare",
    "compare_statements",
    "fee_charges",
    "meter_loss",
    "period_charge",
    "period_containing",
    "round_half_up",
    "statement",
]
