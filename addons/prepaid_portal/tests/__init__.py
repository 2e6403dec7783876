from . import test_exactly_once, test_portal
