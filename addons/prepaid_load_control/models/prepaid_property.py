from odoo import fields, models


class PrepaidProperty(models.Model):
    _inherit = "prepaid.property"
    _prepaid_manager_fields = ("load_manager_id",)

    load_manager_id = fields.Many2one(
        "res.users",
        string="Building Manager",
        help="Gets an activity for each load event of the meters of this building (else the profile's "
        "responsible).",
    )

    board_load_state = fields.Selection(
        [("normal", "Normal"), ("tripped", "Tripped for Load"), ("locked", "Locked: Manager Restores")],
        string="Load Control",
        compute="_compute_board_load_state",
    )

    def _compute_board_load_state(self):
        """The worst load state of the unit's electricity meters (locked, tripped, normal)."""
        rank = {"normal": 0, "tripped": 1, "locked": 2}
        meters = self.env["prepaid.meter"].search(
            [("unit_id", "in", self.ids), ("load_state", "!=", "normal")]
        )
        worst = {}
        for meter in meters:
            current = worst.get(meter.unit_id.id, "normal")
            if rank[meter.load_state] > rank[current]:
                worst[meter.unit_id.id] = meter.load_state
        for prop in self:
            prop.board_load_state = worst.get(prop.id, "normal")
