from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.addons.prepaid_metering.models.prepaid_meter import PrepaidMeter as MeteringMeter
from odoo.exceptions import AccessError, UserError

TEMPORARY_SELECTION = [("none", "None"), ("quantity", "Preset Quantity"), ("kept_on", "Kept On")]


class PrepaidMeter(models.Model):
    """Temporary supply before opening (construction, acceptance, show flats): the meter is kept on while no
    account is open; its consumption then is neither charged nor reported as unbilled, and it ends at the
    account's opening (the cursor moves past it)."""

    _inherit = "prepaid.meter"
    _prepaid_protected_fields = (
        *MeteringMeter._prepaid_protected_fields,
        "temporary_supply",
        "temporary_quantity",
        "temporary_since",
    )

    temporary_supply = fields.Selection(
        TEMPORARY_SELECTION, default="none", required=True, readonly=True, copy=False, tracking=True
    )
    temporary_quantity = fields.Float(string="Temporary Allowance", digits=(16, 3), readonly=True, copy=False)
    temporary_since = fields.Datetime(readonly=True, copy=False)

    def action_start_temporary_supply(self):
        """Managers: keep these unopened meters on (keep-power for electricity, valve open for water)."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can start a temporary supply."))
        self.check_access("write")
        with_account = self.filtered("account_id")
        if with_account:
            raise UserError(
                self.env._(
                    "%(meters)s already bill an account: no temporary supply.",
                    meters=", ".join(with_account.mapped("display_name")),
                )
            )
        internal(self).write({"temporary_supply": "kept_on", "temporary_since": fields.Datetime.now()})
        self.env["prepaid.meter.command"].sudo()._enqueue(
            [
                {
                    "meter_id": meter.id,
                    "kind": "keep_power_on" if meter.utility == "electricity" else "valve_open",
                    "reason": "manual",
                }
                for meter in self
            ],
            urgent=True,
        )
        return True

    @api.private
    def _end_temporary_supply(self):
        """At opening: the temporary supply ends (keep-power released for electricity meters)."""
        temporary = self.filtered(lambda m: m.temporary_supply != "none")
        if not temporary:
            return
        internal(temporary).write({"temporary_supply": "none", "temporary_since": False})
        electric = temporary.filtered(lambda m: m.utility == "electricity")
        if electric:
            self.env["prepaid.meter.command"].sudo()._enqueue(
                [
                    {"meter_id": meter.id, "kind": "keep_power_off", "reason": "automatic"}
                    for meter in electric
                ]
            )


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
