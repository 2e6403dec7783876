from . import test_exactly_once, test_portal, test_restore_e2e
