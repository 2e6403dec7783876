from . import controllers, models, report, wizards


def _post_init_hook(env):
    """Companies that already have prepaid accounts (made before this addon was installed) have turned prepaid
    on: set them up (now if they have a chart of accounts, else when it is loaded). Others are left alone. The
    daily consumption facts are filled in from what is already stored."""
    env["prepaid.account"].with_context(active_test=False).search([]).company_id._prepaid_turn_on()
    # Days settled before the daily consumption facts existed.
    env["prepaid.consumption"]._backfill()
