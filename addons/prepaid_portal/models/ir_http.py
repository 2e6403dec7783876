from odoo import models


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _get_translation_frontend_modules_name(cls):
        """The portal pages' scripts (chart legends, supply states) are translated too."""
        return [*super()._get_translation_frontend_modules_name(), "prepaid_portal"]
