from . import (
    test_alerts,
    test_authorisation_matrix,
    test_concurrency,
    test_end_to_end,
    test_receipt,
    test_reversal_refund,
    test_settings,
    test_settlement,
    test_summary,
    test_topup,
    test_topup_entries,
    test_trust,
)
