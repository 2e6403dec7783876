from . import test_load_control
