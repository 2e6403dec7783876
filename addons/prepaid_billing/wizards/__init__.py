from . import (
    prepaid_monthly_ledger_wizard,
    prepaid_refund_wizard,
    prepaid_report_export_wizard,
    prepaid_reverse_wizard,
    prepaid_shift_report_wizard,
    prepaid_temporary_supply_wizard,
    prepaid_topup_wizard,
)
