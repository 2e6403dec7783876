from . import (
    prepaid_account,
    prepaid_appliance,
    prepaid_batch_operation,
    prepaid_load_event,
    prepaid_load_profile,
    prepaid_meter,
    prepaid_meter_reading,
    prepaid_property,
    prepaid_time_schedule,
)
