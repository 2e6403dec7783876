from . import models, wizards


def _post_init_hook(env):
    """Give every company that already has a chart of accounts its prepaid accounts, journals and top-up
    product (companies that get a chart later are set up when it loads, see account.chart.template)."""
    env["res.company"].search([("chart_template", "!=", False)])._prepaid_billing_setup()
