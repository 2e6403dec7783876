from . import test_commands, test_polling
