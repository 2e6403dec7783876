from odoo import models


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    def _post_load_data(self, template_code, company, template_data):
        res = super()._post_load_data(template_code, company, template_data)
        # A company that gets its chart of accounts now gets the prepaid accounts, journals and product too.
        (company or self.env.company)._prepaid_billing_setup()
        return res
