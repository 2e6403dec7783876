from . import (
    ir_http,
    payment_transaction,
    prepaid_account,
    prepaid_portal_binding,
    prepaid_topup,
    res_company,
    res_config_settings,
)
