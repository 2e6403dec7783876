from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, float_compare

TEMPORARY_SELECTION = [
    ("none", "None"),
    ("quantity", "Preset Quantity"),
    ("kept_on", "Kept On"),
    ("used_up", "Preset Quantity Used Up"),
]


class PrepaidMeter(models.Model):
    """Temporary supply before opening (construction, acceptance, show flats): an unopened meter is kept on,
    or given a preset quantity after which the platform cuts it. Its consumption meanwhile is neither
    charged nor reported as unbilled, and the temporary supply ends at the account's opening (the cursor
    moves past it, the temporary use is recorded on the opening). A meter whose account was refunded and
    closed is reset for re-use: read, its cursor moved, its purchase count recorded, ready for the next
    opening."""

    _inherit = "prepaid.meter"
    _prepaid_protected_fields = (
        "temporary_supply",
        "temporary_quantity",
        "temporary_used",
        "temporary_since",
        "reused_at",
        "reused_purchase_count",
    )

    temporary_supply = fields.Selection(
        TEMPORARY_SELECTION, default="none", required=True, readonly=True, copy=False, tracking=True
    )
    temporary_quantity = fields.Float(
        string="Temporary Allowance",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Preset quantity: the kWh or m3 the meter may use before opening; the platform cuts it after.",
    )
    temporary_used = fields.Float(
        string="Temporary Use", digits=(16, 3), readonly=True, copy=False, help="Settled since it started."
    )
    temporary_since = fields.Datetime(readonly=True, copy=False)
    account_state = fields.Selection(related="account_id.state", string="Account State")
    reused_at = fields.Datetime(string="Reset for Re-use On", readonly=True, copy=False)
    reused_purchase_count = fields.Integer(
        string="Purchase Count at Re-use",
        readonly=True,
        copy=False,
        help="The purchase count the meter held when it was reset for re-use: the next recharge carries the "
        "one after it.",
    )

    def action_start_temporary_supply(self):
        """Managers: the temporary supply wizard for these unopened meters."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can start a temporary supply."))
        self.check_access("write")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Start Temporary Supply"),
            "res_model": "prepaid.temporary.supply.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_ids": [(6, 0, self.ids)]},
        }

    @api.private
    def _start_temporary_supply(self, mode, quantity=0.0):
        """Keep these unopened meters on (``kept_on``: keep-power for electricity, valve open for water) or
        close them for a preset ``quantity`` (the platform cuts them once it is used)."""
        common = self.filtered(lambda m: not m.unit_id)
        if common:
            raise UserError(
                self.env._(
                    "%(meters)s belong to no unit: only a unit's meters await an opening.",
                    meters=", ".join(common.mapped("display_name")),
                )
            )
        with_account = self.filtered("account_id")
        if with_account:
            raise UserError(
                self.env._(
                    "%(meters)s already bill an account: no temporary supply.",
                    meters=", ".join(with_account.mapped("display_name")),
                )
            )
        if mode == "quantity" and float_compare(quantity, 0.0, precision_digits=3) <= 0:
            raise UserError(self.env._("A preset temporary quantity must be positive."))
        internal(self).write(
            {
                "temporary_supply": mode,
                "temporary_quantity": quantity if mode == "quantity" else 0.0,
                "temporary_used": 0.0,
                "temporary_since": fields.Datetime.now(),
            }
        )
        # Settlement counts the temporary use from now on: what the meter counted before is not part of it.
        self._move_cursors_to_latest()

        def kind(meter):
            if meter.utility == "water":
                return "valve_open"
            return "keep_power_on" if mode == "kept_on" else "close"

        self.env["prepaid.meter.command"].sudo()._enqueue(
            [{"meter_id": meter.id, "kind": kind(meter), "reason": "manual"} for meter in self], urgent=True
        )
        return True

    @api.private
    def _track_temporary_use(self, consumed):
        """``{meter id: quantity}`` settled without an account: added to the temporary use of meters on a
        preset quantity; a meter that used it up is cut (trip or valve close) and says so."""
        meters = self.browse(list(consumed)).filtered(lambda m: m.temporary_supply == "quantity")
        used_up = self.browse()
        for meter in meters:
            used = meter.temporary_used + consumed[meter.id]
            vals = {"temporary_used": used}
            if float_compare(used, meter.temporary_quantity, precision_digits=3) >= 0:
                vals["temporary_supply"] = "used_up"
                used_up |= meter
            internal(meter).write(vals)
        if used_up:
            self.env["prepaid.meter.command"].sudo()._enqueue(
                [
                    {
                        "meter_id": meter.id,
                        "kind": "trip" if meter.utility == "electricity" else "valve_close",
                        "reason": "automatic",
                    }
                    for meter in used_up
                ],
                urgent=True,
            )
            for meter in used_up:
                meter._message_log(
                    body=self.env._(
                        "Temporary allowance of %(quantity)s used up (%(used)s): supply cut until the "
                        "account is opened.",
                        quantity=meter.temporary_quantity,
                        used=meter.temporary_used,
                    )
                )
        return used_up

    @api.private
    def _end_temporary_supply(self):
        """At opening: the temporary supply ends (keep-power released for electricity meters kept on)."""
        temporary = self.filtered(lambda m: m.temporary_supply != "none")
        if not temporary:
            return
        kept_on = temporary.filtered(lambda m: m.temporary_supply == "kept_on" and m.utility == "electricity")
        internal(temporary).write(
            {
                "temporary_supply": "none",
                "temporary_since": False,
                "temporary_quantity": 0.0,
                "temporary_used": 0.0,
            }
        )
        if kept_on:
            self.env["prepaid.meter.command"].sudo()._enqueue(
                [{"meter_id": meter.id, "kind": "keep_power_off", "reason": "automatic"} for meter in kept_on]
            )

    def action_reset_for_reuse(self):
        """Managers: make these meters, whose account was refunded and closed, ready for the next tenant:
        read now where a gateway reaches them (the purchase count and counters as the meter holds them), the
        settlement cursor moved to the latest reading (the gap is never charged to anyone), any temporary
        supply ended, and the purchase count recorded (the next recharge carries the one after it)."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can reset meters for re-use."))
        self.check_access("write")
        busy = self.filtered(lambda m: m.account_id.state in ("draft", "open", "suspended"))
        if busy:
            raise UserError(
                self.env._(
                    "%(meters)s still bill an account that is not closed: refund and close it first.",
                    meters=", ".join(busy.mapped("display_name")),
                )
            )
        reachable = self.filtered(lambda m: m.gateway_id and m.bus_id)
        if reachable:
            reachable.sudo().gateway_id._poll(meters=reachable.sudo())
        meters = self.sudo()
        meters.invalidate_recordset()
        meters._end_temporary_supply()
        meters._move_cursors_to_latest()
        now = fields.Datetime.now()
        for meter in meters:
            internal(meter).write(
                {"account_id": False, "reused_at": now, "reused_purchase_count": meter.purchase_count}
            )
            meter._message_log(
                body=self.env._(
                    "Reset for re-use: counter %(total)s, purchase count %(count)s; the next opening starts "
                    "from here.",
                    total=meter.last_total,
                    count=meter.purchase_count,
                )
            )
        return self.env["prepaid.gateway"]._notify(
            self.env._("Reset for Re-use"),
            self.env._("%(count)s meter(s) ready for the next tenant.", count=len(meters)),
            "success",
        )

    @api.private
    def _move_cursors_to_latest(self):
        """Move the settlement cursor of these meters to their latest valid reading: what a meter counted
        before (an account's opening, a re-use) is never charged. Returns ``{meter id: temporary
        consumption}``: since the start of its temporary supply for a meter in one, else what the cursor
        passed over."""
        meters = self
        if not meters:
            return {}
        self.env["prepaid.meter.reading"].flush_model()
        self.env["prepaid.settlement.cursor"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """WITH latest AS (
                       SELECT DISTINCT ON (meter_id) meter_id, read_at, total, sharp, peak, flat, valley
                         FROM prepaid_meter_reading
                        WHERE meter_id = ANY(%s) AND total IS NOT NULL AND state = 'valid'
                     ORDER BY meter_id, read_at DESC
                   ), old AS (
                       SELECT meter_id, total FROM prepaid_settlement_cursor WHERE meter_id = ANY(%s)
                   ), started AS (
                       -- A meter in temporary supply: its counter when the supply started (the last reading
                       -- before, else the first after), so the whole temporary use is recorded, not only what
                       -- the settlement had not passed over yet.
                       SELECT m.id AS meter_id, COALESCE(
                              (SELECT r.total FROM prepaid_meter_reading r
                                WHERE r.meter_id = m.id AND r.state = 'valid' AND r.total IS NOT NULL
                                  AND r.read_at <= m.temporary_since ORDER BY r.read_at DESC LIMIT 1),
                              (SELECT r.total FROM prepaid_meter_reading r
                                WHERE r.meter_id = m.id AND r.state = 'valid' AND r.total IS NOT NULL
                                  AND r.read_at > m.temporary_since ORDER BY r.read_at LIMIT 1)) AS total
                         FROM prepaid_meter m
                        WHERE m.id = ANY(%s) AND m.temporary_since IS NOT NULL
                   ), moved AS (
                       INSERT INTO prepaid_settlement_cursor
                              (meter_id, read_at, total, sharp, peak, flat, valley, attempted_at, settled_at,
                               unbilled_quantity)
                       SELECT meter_id, read_at, total, sharp, peak, flat, valley, read_at,
                              now() AT TIME ZONE 'UTC', 0
                         FROM latest
                       ON CONFLICT (meter_id) DO UPDATE
                          SET read_at = EXCLUDED.read_at, total = EXCLUDED.total, sharp = EXCLUDED.sharp,
                              peak = EXCLUDED.peak, flat = EXCLUDED.flat, valley = EXCLUDED.valley,
                              attempted_at = EXCLUDED.attempted_at, settled_at = EXCLUDED.settled_at,
                              cycle_start = NULL, cycle_quantity = NULL, cycle_sharp = NULL,
                              cycle_peak = NULL,
                              cycle_flat = NULL, cycle_valley = NULL, cycle_exact = NULL, cycle_amount = NULL,
                              last_error = NULL
                       RETURNING meter_id
                   )
                   SELECT l.meter_id, COALESCE(l.total - COALESCE(s.total, o.total), 0)
                     FROM latest l LEFT JOIN old o ON o.meter_id = l.meter_id
                     LEFT JOIN started s ON s.meter_id = l.meter_id""",
                list(meters.ids),
                list(meters.ids),
                list(meters.ids),
            )
        )
        self.env["prepaid.settlement.cursor"].invalidate_model()
        meters.invalidate_recordset()
        return {meter_id: float(quantity or 0) for meter_id, quantity in rows}


class PrepaidAnomaly(models.Model):
    _inherit = "prepaid.anomaly"

    @api.private
    def _raise_unbilled(self, consumed):
        """A meter in temporary supply consumes without a charge by design: no anomaly."""
        temporary = (
            set(
                self.env["prepaid.meter"]
                .sudo()
                .search([("id", "in", [row.id for row, _i in consumed]), ("temporary_supply", "!=", "none")])
                .ids
            )
            if consumed
            else set()
        )
        return super()._raise_unbilled([(row, i) for row, i in consumed if row.id not in temporary])
