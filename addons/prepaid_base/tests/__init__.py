from . import (
    test_account,
    test_concurrency,
    test_fee_item,
    test_i18n_complete,
    test_ledger,
    test_property,
    test_security,
    test_tariff,
    test_tenancy,
    test_translation,
    test_ui,
)
