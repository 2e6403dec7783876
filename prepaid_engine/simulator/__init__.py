"""The whole-site simulator: virtual gateways and meters answering from the meter's side with the engine's
own codecs.

``python -m prepaid_engine.simulator`` starts the demo site (:func:`default_site`) and prints its site map;
tests and the Odoo side run a :class:`Site` in their own event loop or a :class:`SiteThread` beside it.
:func:`dump_state` and ``Site(config, state=...)`` carry a site's meters over a restart (:mod:`.state`);
:func:`control` talks to a running simulator's control server (:mod:`.control`).
"""

from .clock import SimClock
from .config import (
    DEFAULT_MASTER_KEY,
    BusConfig,
    GatewayConfig,
    MeterConfig,
    SiteConfig,
    config_to_dict,
    default_site,
    generate_site,
    load_config,
)
from .control import ControlError, ControlServer, control
from .faults import Fault, FaultRates
from .gateways import byte_time, exchange_time
from .meters import Exchange, SimMeter, Valve
from .site import Site, SiteThread
from .state import StateError, dump_state, load_state

__all__ = [
    "DEFAULT_MASTER_KEY",
    "BusConfig",
    "ControlError",
    "ControlServer",
    "Exchange",
    "Fault",
    "FaultRates",
    "GatewayConfig",
    "MeterConfig",
    "SimClock",
    "SimMeter",
    "Site",
    "SiteConfig",
    "SiteThread",
    "StateError",
    "Valve",
    "byte_time",
    "config_to_dict",
    "control",
    "default_site",
    "dump_state",
    "exchange_time",
    "generate_site",
    "load_config",
    "load_state",
]
