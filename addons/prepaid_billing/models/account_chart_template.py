from odoo import models


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    def _post_load_data(self, template_code, company, template_data):
        res = super()._post_load_data(template_code, company, template_data)
        # Only a company that turned prepaid on before it had a chart of accounts is set up now (the demo
        # company of a new database is one); every other company is left as Odoo's chart makes it.
        company = company or self.env.company
        if company.prepaid_enabled:
            company._prepaid_ensure_setup()
        return res
