from odoo import fields, models


class PrepaidProperty(models.Model):
    _inherit = "prepaid.property"
    _prepaid_manager_fields = ("anomaly_manager_id",)

    anomaly_manager_id = fields.Many2one(
        "res.users",
        domain="[('share', '=', False)]",
        help="Who gets a to-do for the anomalies detected on this building's meters (empty: the company's "
        "first prepaid manager).",
    )
