from . import (
    test_guard_union,
    test_load_control,
    test_load_meter_events,
    test_load_parameters,
    test_time_control,
)
