from . import (
    test_commands,
    test_concurrency,
    test_default_site,
    test_field,
    test_import,
    test_meter,
    test_plausibility,
    test_polling,
    test_push,
    test_security,
)
