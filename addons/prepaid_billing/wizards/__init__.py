from . import prepaid_refund_wizard, prepaid_reverse_wizard, prepaid_topup_wizard
