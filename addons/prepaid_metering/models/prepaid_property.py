from odoo import api, fields, models

# Room status board: the state of a unit's meters of one utility, worst first.
BOARD_STATE_SELECTION = [
    ("none", "No Meter"),
    ("offline", "Offline"),
    ("fault", "Fault"),
    ("off", "Cut Off"),
    ("on", "On"),
]
BOARD_RANK = {state: rank for rank, (state, _label) in enumerate(BOARD_STATE_SELECTION)}


class PrepaidProperty(models.Model):
    _inherit = "prepaid.property"

    meter_ids = fields.One2many("prepaid.meter", "unit_id", string="Meters")
    board_group = fields.Char(
        string="Building / Floor",
        compute="_compute_board_group",
        store=True,
        help="Column of the room status board: the building, then the floor.",
    )
    meter_count = fields.Integer(compute="_compute_meter_count")
    electricity_state = fields.Selection(
        BOARD_STATE_SELECTION,
        compute="_compute_board",
        help="Worst state of the unit's electricity meters: offline, fault, cut off or on.",
    )
    water_state = fields.Selection(
        BOARD_STATE_SELECTION,
        compute="_compute_board",
        help="Worst state of the unit's water meters: offline, fault, valve closed or open.",
    )
    board_account_id = fields.Many2one("prepaid.account", string="Account", compute="_compute_board")
    board_partner_id = fields.Many2one("res.partner", string="Tenant", compute="_compute_board")
    board_currency_id = fields.Many2one("res.currency", compute="_compute_board")
    board_balance = fields.Monetary(
        string="Balance", currency_field="board_currency_id", compute="_compute_board"
    )
    board_level = fields.Selection(
        [
            ("normal", "Normal"),
            ("warning_1", "Warning 1"),
            ("warning_2", "Warning 2"),
            ("warning_3", "Warning 3"),
            ("cutoff", "Cut-off"),
        ],
        string="Balance Level",
        compute="_compute_board",
    )

    @api.depends("building_id.name", "floor_id.name")
    def _compute_board_group(self):
        for prop in self:
            names = [name for name in (prop.building_id.name, prop.floor_id.name) if name]
            prop.board_group = " / ".join(names) or False

    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group([("unit_id", "in", self.ids)], ["unit_id"], ["__count"])
        )
        for prop in self:
            prop.meter_count = counts.get(prop, 0)

    @api.depends("meter_ids.online", "meter_ids.supply", "meter_ids.utility", "meter_ids.account_id")
    def _compute_board(self):
        accounts = self.env["prepaid.account"].search(
            [("unit_ids", "in", self.ids), ("state", "in", ("open", "suspended"))], order="id desc"
        )
        for prop in self:
            account = (
                prop.meter_ids.account_id[:1]
                or accounts.filtered(lambda a, prop=prop: prop in a.unit_ids)[:1]
            )
            states = {}
            for meter in prop.meter_ids:
                state = "offline" if not meter.online else (meter.supply or "on")
                current = states.get(meter.utility, "on")
                states[meter.utility] = min(state, current, key=BOARD_RANK.get)
            prop.electricity_state = states.get("electricity", "none")
            prop.water_state = states.get("water", "none")
            prop.board_account_id = account
            prop.board_partner_id = account.partner_id
            prop.board_currency_id = account.currency_id or prop.company_id.currency_id
            prop.board_balance = account.balance
            prop.board_level = account.level or False

    def action_view_meters(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_meter_action")
        action["domain"] = [("unit_id", "child_of", self.id)]
        action["context"] = {"default_unit_id": self.id if self.kind == "unit" else False}
        return action
