"""Billing arithmetic: common-area apportionment, fees, statements. Pure, exact, no I/O, never imports odoo.

- :mod:`.money` -- amounts as whole precision steps, the one rounding rule (half away from zero);
- :mod:`.apportion` -- :func:`apportion`, largest-remainder shares that add up to the cost exactly.
"""

from .apportion import apportion
from .money import CENT, round_half_up

__all__ = ["CENT", "apportion", "round_half_up"]
