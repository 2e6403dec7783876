from . import test_load_control, test_time_control
