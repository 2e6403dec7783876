from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    prepaid_property_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_property_res_users_rel",
        "user_id",
        "property_id",
        string="Allowed Properties",
        help="Prepaid operators only see these properties, everything below them, and the tenancies and "
        "accounts of their units. Empty: all properties of the user's companies.",
    )

    def _get_invalidation_fields(self):
        # Record rules read this field: changing it must clear the rule cache.
        return super()._get_invalidation_fields() | {"prepaid_property_ids"}
