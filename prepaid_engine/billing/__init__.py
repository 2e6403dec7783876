"""Billing arithmetic: common-area apportionment, fees, statements. Pure, exact, no I/O, never imports odoo.

- :mod:`.money` -- amounts as whole precision steps, the one rounding rule (half away from zero);
- :mod:`.apportion` -- :func:`apportion`, largest-remainder shares that add up to the cost exactly;
- :mod:`.rules` -- :func:`apportion_common`: a common meter's cost (and a master meter's loss) shared over
  units by manual coefficients, consumption share, floor area, or fixed amounts.
"""

from .apportion import apportion
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

__all__ = [
    "CENT",
    "Apportionment",
    "ApportionmentLine",
    "ApportionmentRule",
    "CoefficientSource",
    "MeterLoss",
    "UnitBasis",
    "apportion",
    "apportion_common",
    "meter_loss",
    "round_half_up",
]
