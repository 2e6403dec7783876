"""Sans-I/O meter protocol codecs: bytes in, typed frames and messages out, and back.

One module per protocol, used as a namespace (``from prepaid_engine.codecs import dlt645``;
``dlt645.read(address, "0001FF00")``):

- :mod:`.dlt645` -- DL/T 645-2007, a package by layer: ``frame`` (frames, ``Deframer``), ``fields`` (field
  encodings), ``messages`` (both directions), ``error_bits`` (ERR/SERR), ``master`` (the poller's builders and
  ``parse_reply``); the package itself is the namespace callers use
- :mod:`.dlt645_di` -- the DL/T 645-2007 data identifiers as data; value codecs; ``StatusWord3``
- :mod:`.dlt645_1997` -- DL/T 645-1997 (2-byte identifiers) on the same framing and deframer
- :mod:`.cjt188` -- CJ/T 188-2004 water meters: frames, messages, 901F values, valve control, ``Deframer``
- :mod:`.modbus` -- Modbus register maps as data
- :mod:`.bcd` -- BCD numbers and addresses; :mod:`.framing` -- the deframer machinery both framed
  protocols share

Submodules load on first attribute access, so a process that polls only Modbus meters never imports the
DL/T 645 tables.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["bcd", "cjt188", "dlt645", "dlt645_1997", "dlt645_di", "framing", "modbus"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
