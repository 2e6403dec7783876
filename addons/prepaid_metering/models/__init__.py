from . import (
    prepaid_account,
    prepaid_anomaly,
    prepaid_comm_log,
    prepaid_gateway,
    prepaid_gateway_bus,
    prepaid_meter,
    prepaid_meter_command,
    prepaid_meter_model,
    prepaid_meter_reading,
    prepaid_platform,
    prepaid_property,
    prepaid_push_message,
)
