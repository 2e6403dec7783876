"""The whole-site simulator: virtual gateways and meters answering from the meter's side with the engine's
own codecs.

``python -m prepaid_engine.simulator`` starts the demo site (:func:`default_site`) and prints its site map;
tests and the Odoo side run a :class:`Site` in their own event loop or a :class:`SiteThread` beside it.
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
from .faults import Fault, FaultRates
from .gateways import byte_time, exchange_time
from .meters import Exchange, SimMeter, Valve
from .site import Site, SiteThread

__all__ = [
    "DEFAULT_MASTER_KEY",
    "BusConfig",
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
    "Valve",
    "byte_time",
    "config_to_dict",
    "default_site",
    "exchange_time",
    "generate_site",
    "load_config",
]
