from . import (
    prepaid_account,
    prepaid_fee_item,
    prepaid_guard,
    prepaid_ledger,
    prepaid_property,
    prepaid_tariff,
    prepaid_tariff_period,
    prepaid_tariff_tier,
    prepaid_tenancy,
    res_company,
    res_config_settings,
    res_users,
)
