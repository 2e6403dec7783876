from . import (
    test_commands,
    test_default_site,
    test_import,
    test_meter,
    test_plausibility,
    test_polling,
    test_push,
    test_security,
)
