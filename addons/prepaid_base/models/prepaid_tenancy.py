from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError

from .prepaid_guard import internal

# Button -> (states it may start from, state it leads to).
TENANCY_TRANSITIONS = {
    "action_activate": (("draft",), "active"),
    "action_end": (("active",), "ended"),
    "action_cancel": (("draft", "active"), "cancelled"),
    "action_draft": (("cancelled",), "draft"),
}


class PrepaidTenancy(models.Model):
    """A tenant (partner) in one or more units from a date to a date. Only active tenancies block a unit:
    a unit cannot be in two active tenancies whose dates overlap."""

    _name = "prepaid.tenancy"
    _description = "Prepaid Tenancy"
    _inherit = ["prepaid.guard.mixin", "mail.thread", "mail.activity.mixin"]
    _prepaid_protected_fields = ("state",)
    _prepaid_target_fields = ("partner_id", "unit_ids", "account_id")
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, copy=False, readonly=True, default=lambda self: self.env._("New")
    )
    partner_id = fields.Many2one(
        "res.partner", string="Tenant", required=True, index=True, tracking=True, check_company=True
    )
    unit_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_tenancy_unit_rel",
        "tenancy_id",
        "unit_id",
        string="Units",
        domain="[('kind', '=', 'unit')]",
        check_company=True,
        tracking=True,
    )
    date_start = fields.Date(
        string="Start Date", required=True, default=fields.Date.context_today, tracking=True
    )
    date_end = fields.Date(string="End Date", tracking=True, help="Leave empty for an open-ended tenancy.")
    state = fields.Selection(
        [("draft", "Draft"), ("active", "Active"), ("ended", "Ended"), ("cancelled", "Cancelled")],
        required=True,
        default="draft",
        copy=False,
        tracking=True,
        index=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "prepaid.account",
        string="Prepaid Account",
        index="btree_not_null",
        check_company=True,
        tracking=True,
        help="The prepaid account this tenancy funds.",
    )
    note = fields.Html()

    _sql_constraints = [
        (
            "date_check",
            "CHECK(date_end IS NULL OR date_end >= date_start)",
            "The end date of a tenancy cannot be before its start date.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not vals.get("name") or vals["name"] == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.tenancy") or self.env._("New")
        return super().create(vals_list)

    @api.constrains("unit_ids")
    def _check_units_are_units(self):
        for tenancy in self:
            if tenancy.unit_ids.filtered(lambda unit: unit.kind != "unit"):
                raise ValidationError(
                    self.env._("Tenancy %(tenancy)s can only cover units.", tenancy=tenancy.display_name)
                )

    def _get_overlap_domain(self):
        """Other active tenancies sharing a unit with this one whose dates overlap it."""
        self.ensure_one()
        domain = [
            ("id", "!=", self.id),
            ("state", "=", "active"),
            ("unit_ids", "in", self.unit_ids.ids),
            "|",
            ("date_end", "=", False),
            ("date_end", ">=", self.date_start),
        ]
        if self.date_end:
            domain.append(("date_start", "<=", self.date_end))
        return domain

    @api.constrains("state", "unit_ids", "date_start", "date_end")
    def _check_unit_overlap(self):
        for tenancy in self.filtered(lambda t: t.state == "active"):
            # sudo: the clash may be with a tenancy the current user cannot see.
            clash = self.sudo().search(tenancy._get_overlap_domain(), limit=1)
            if clash:
                units = tenancy.unit_ids.sudo() & clash.unit_ids
                raise ValidationError(
                    self.env._(
                        "%(units)s already in active tenancy %(other)s for overlapping dates.",
                        units=", ".join(units.mapped("display_name")),
                        other=clash.name,
                    )
                )

    def _change_state(self, action):
        allowed, target = TENANCY_TRANSITIONS[action]
        wrong = self.filtered(lambda t: t.state not in allowed)
        if wrong:
            raise UserError(
                self.env._(
                    "Tenancies %(tenancies)s cannot go to that state from their current state.",
                    tenancies=", ".join(wrong.mapped("name")),
                )
            )
        self.check_access("write")
        internal(self).write({"state": target})

    def action_activate(self):
        missing = self.filtered(lambda t: not t.unit_ids)
        if missing:
            raise UserError(
                self.env._(
                    "Add at least one unit to %(tenancies)s before activating it.",
                    tenancies=", ".join(missing.mapped("name")),
                )
            )
        self._change_state("action_activate")

    def action_end(self):
        today = fields.Date.context_today(self)
        self._change_state("action_end")
        for tenancy in self:
            # Ending early shortens the tenancy to today (never before its start).
            if not tenancy.date_end or tenancy.date_end > today:
                tenancy.date_end = max(today, tenancy.date_start)

    def action_cancel(self):
        self._change_state("action_cancel")

    def action_draft(self):
        self._change_state("action_draft")

    def _prepare_account_vals(self):
        self.ensure_one()
        return {
            "partner_id": self.partner_id.id,
            "company_id": self.company_id.id,
            "unit_ids": [Command.set(self.unit_ids.ids)],
        }

    def action_create_account(self):
        """Create a draft prepaid account for the tenant covering the tenancy's units, and link it."""
        self.ensure_one()
        if self.account_id:
            raise UserError(
                self.env._("Tenancy %(tenancy)s already funds an account.", tenancy=self.display_name)
            )
        self.account_id = self.env["prepaid.account"].create(self._prepare_account_vals())
        return self.account_id._get_records_action()
