"""DL/T 645-1997 meter session: reads only (2-byte identifiers, C=01), on the 2007 machinery.

The 1997 edition has no relay control, no security command and no prepaid identifiers in the standard, so
every command is refused with :class:`~prepaid_engine.errors.ConfigError` (reported ``UNSUPPORTED``).
Energies, current and power are scaled by the CT ratio as for 2007 meters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..codecs import dlt645_1997
from .base import Values
from .dlt645 import Dlt645Adapter


class Dlt645v1997Adapter(Dlt645Adapter):
    codec: Any = dlt645_1997
    read_function = 0x01
    builders: dict = {}

    @staticmethod
    def collect(pairs: Sequence[tuple[str, bytes]]) -> Values:
        values: Values = {}
        for di, raw in pairs:
            values.update(dlt645_1997.reading_values(di, raw))
        return values
