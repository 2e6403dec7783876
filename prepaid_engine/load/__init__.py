"""Load control, pure: appliance signatures, malicious-load classification, signature learning, the
automatic-restore policy, time-control schedules and the meters' load-control parameters as data.

Never imports odoo, does no I/O and reads no clock: the ``prepaid_load_control`` addon turns its records
into these dataclasses, calls the functions, and writes the results back.

* :mod:`.appliances`: the appliance catalogue (``data/appliances.json``) and its loader.
* :mod:`.classify`: step detection and classification against a :class:`LoadProfile`.
* :mod:`.learn`: a new signature from samples taken with an appliance on.
* :mod:`.restore`: restore at T / wait for a manager / never, after a load trip.
* :mod:`.schedule`: weekly windows, holidays, effective dates: desired supply and the next edge.
* :mod:`.params`: per-model parameter encodings (power limit, malicious-load settings, restore, trip reason,
  event records) and their value codecs.
"""

from .appliances import (
    Appliance,
    Category,
    builtin_appliances,
    catalogue_document,
    default_whitelist,
    get_appliance,
    load_appliances,
    parse_appliances,
)
from .classify import (
    MAX_RANGES,
    MIN_RANGE_W,
    Action,
    Classification,
    Detection,
    LimitMode,
    LoadEvent,
    LoadProfile,
    MaliciousMode,
    PowerRange,
    Sample,
    Step,
    best_match,
    classify,
    classify_step,
    detect_steps,
)
from .learn import learn_signature
from .params import (
    PARAMETERS,
    EventRecord,
    TripReason,
    builtin_parameters,
    decode_parameter,
    encode_parameter,
    model_parameters,
    profile_from_parameters,
    profile_parameters,
    validate_parameters,
    with_parameters,
)
from .restore import RestoreAction, RestoreDecision, RestorePolicy, day_bounds, decide_restore
from .schedule import ALL_DAYS, SCHOOL_NIGHTS, Schedule, Window, next_edge, supply_at

__all__ = [
    "ALL_DAYS",
    "MAX_RANGES",
    "MIN_RANGE_W",
    "PARAMETERS",
    "SCHOOL_NIGHTS",
    "Action",
    "Appliance",
    "Category",
    "Classification",
    "Detection",
    "EventRecord",
    "LimitMode",
    "LoadEvent",
    "LoadProfile",
    "MaliciousMode",
    "PowerRange",
    "RestoreAction",
    "RestoreDecision",
    "RestorePolicy",
    "Sample",
    "Schedule",
    "Step",
    "TripReason",
    "Window",
    "best_match",
    "builtin_appliances",
    "builtin_parameters",
    "catalogue_document",
    "classify",
    "classify_step",
    "day_bounds",
    "decide_restore",
    "decode_parameter",
    "default_whitelist",
    "detect_steps",
    "encode_parameter",
    "get_appliance",
    "learn_signature",
    "load_appliances",
    "model_parameters",
    "next_edge",
    "parse_appliances",
    "profile_from_parameters",
    "profile_parameters",
    "supply_at",
    "validate_parameters",
    "with_parameters",
]
