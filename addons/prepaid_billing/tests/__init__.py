from . import (
    test_alerts,
    test_concurrency,
    test_end_to_end,
    test_plausibility,
    test_reversal_refund,
    test_settings,
    test_settlement,
    test_summary,
    test_topup,
)
