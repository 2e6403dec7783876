from . import prepaid_load_restore_wizard
