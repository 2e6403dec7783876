from . import test_commands, test_import, test_meter, test_polling, test_push, test_security
