from odoo import api, fields, models
from odoo.addons.base.models.res_partner import _tz_get
from odoo.exceptions import UserError, ValidationError

KIND_SELECTION = [("site", "Site"), ("building", "Building"), ("floor", "Floor"), ("unit", "Unit")]
# The kinds a property of each kind may hang under; False stands for "no parent".
ALLOWED_PARENT_KINDS = {
    "site": (False,),
    "building": (False, "site"),
    "floor": ("building",),
    "unit": ("floor", "building"),
}
# The stored ancestor-or-self field that points at a property of each kind.
ANCESTOR_FIELDS = {"site": "site_id", "building": "building_id", "floor": "floor_id"}
# The tariff field of each utility.
TARIFF_FIELDS = {"electricity": "electricity_tariff_id", "water": "water_tariff_id"}
WEEKDAYS = 7


class PrepaidProperty(models.Model):
    """One tree for the whole estate: site > building > floor > unit (a unit may also hang directly under a
    building). Time zone and tariffs are inherited down the tree; the settlement calendar and the reading
    interval are set per building."""

    _name = "prepaid.property"
    _description = "Prepaid Property"
    _inherit = ["prepaid.guard.mixin", "mail.thread"]
    # What a unit is billed at and when its cycles close: for managers.
    _prepaid_manager_fields = (
        "electricity_tariff_id",
        "water_tariff_id",
        "settlement_cycle",
        "settlement_day",
        "settlement_time",
        "company_id",
    )
    _prepaid_target_fields = ("parent_id",)
    _parent_name = "parent_id"
    _parent_store = True
    _rec_name = "complete_name"
    _rec_names_search = ["complete_name", "code"]
    _order = "complete_name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(
        tracking=True, index="btree_not_null", help="Short reference, unique per company (e.g. A-101)."
    )
    complete_name = fields.Char(compute="_compute_complete_name", store=True, recursive=True)
    kind = fields.Selection(KIND_SELECTION, required=True, default="unit", tracking=True)
    parent_id = fields.Many2one(
        "prepaid.property",
        index=True,
        ondelete="restrict",
        check_company=True,
        tracking=True,
    )
    parent_path = fields.Char(index=True)
    child_ids = fields.One2many("prepaid.property", "parent_id", string="Children")
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    active = fields.Boolean(default=True, tracking=True)
    unit_type = fields.Selection(
        [
            ("room", "Room"),
            ("shop", "Shop"),
            ("stall", "Stall"),
            ("office", "Office"),
            ("dormitory", "Dormitory"),
            ("common_area", "Common Area"),
        ],
        default="room",
        tracking=True,
    )
    area = fields.Float(string="Area (m²)", digits=(16, 2), tracking=True)
    tz = fields.Selection(
        _tz_get,
        string="Time Zone",
        default=lambda self: self._default_tz(),
        help="Time zone the tariff periods and the settlement calendar are evaluated in. "
        "Leave empty to inherit it from the parent.",
    )
    effective_tz = fields.Selection(
        _tz_get,
        string="Effective Time Zone",
        compute="_compute_effective_tz",
        store=True,
        recursive=True,
        help="This property's time zone, or the nearest ancestor's, or the company's.",
    )
    # Building settings (read by metering and billing for every unit of the building).
    reading_interval = fields.Integer(
        string="Reading Interval (min)", default=15, help="Minutes between two meter readings."
    )
    settlement_cycle = fields.Selection(
        [("monthly", "Monthly"), ("weekly", "Weekly"), ("daily", "Daily")],
        default="monthly",
        help="Length of a settlement cycle: tiers and free allowances restart with each cycle.",
    )
    settlement_day = fields.Integer(
        default=1,
        help="Monthly cycle: day of the month (1-31; the last day of shorter months). "
        "Weekly cycle: day of the week (1 = Monday ... 7 = Sunday). Ignored for a daily cycle.",
    )
    settlement_time = fields.Float(default=0.0, help="Local time of day the cycle starts.")
    # Ancestors by kind (the record itself when it is of that kind), for grouping and reports.
    site_id = fields.Many2one(
        "prepaid.property", compute="_compute_ancestors", store=True, recursive=True, index=True
    )
    building_id = fields.Many2one(
        "prepaid.property", compute="_compute_ancestors", store=True, recursive=True, index=True
    )
    floor_id = fields.Many2one(
        "prepaid.property", compute="_compute_ancestors", store=True, recursive=True, index=True
    )
    electricity_tariff_id = fields.Many2one(
        "prepaid.tariff",
        domain="[('utility', '=', 'electricity')]",
        check_company=True,
        tracking=True,
        help="Leave empty to inherit the parent's electricity tariff.",
    )
    water_tariff_id = fields.Many2one(
        "prepaid.tariff",
        domain="[('utility', '=', 'water')]",
        check_company=True,
        tracking=True,
        help="Leave empty to inherit the parent's water tariff.",
    )
    note = fields.Html()
    child_count = fields.Integer(compute="_compute_counts")
    tenancy_count = fields.Integer(compute="_compute_counts")
    account_count = fields.Integer(compute="_compute_counts")

    _sql_constraints = [
        ("code_company_uniq", "UNIQUE(code, company_id)", "A property code must be unique per company."),
        ("area_positive", "CHECK(area >= 0)", "The area cannot be negative."),
        (
            "reading_interval_positive",
            "CHECK(reading_interval > 0)",
            "The reading interval must be positive.",
        ),
        (
            "settlement_time_valid",
            "CHECK(settlement_time >= 0 AND settlement_time < 24)",
            "The settlement time must be between 00:00 and 23:59.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            # Children inherit the time zone of their parent unless one is given explicitly.
            if vals.get("parent_id") and "tz" not in vals:
                vals["tz"] = False
        return super().create(vals_list)

    def _default_tz(self):
        # Children inherit the time zone of their parent: only top-level records get the company's.
        if self.env.context.get("default_parent_id"):
            return False
        return self.env.company.partner_id.tz or self.env.user.tz or False

    @api.depends("name", "code", "kind", "building_id.name", "site_id.name")
    def _compute_display_name(self):
        """What a property is called wherever it is picked or listed: a unit by its code and name first, then
        its building (``[A-101] Shop 101 · Building A``), so the room shows even when the text is cut; a floor
        with its building; a building with its site."""
        for prop in self:
            name = f"[{prop.code}] {prop.name}" if prop.code and prop.kind == "unit" else prop.name
            context = prop.building_id if prop.kind in ("unit", "floor") else prop.site_id
            if context and context != prop:
                name = f"{name} · {context.name}"
            prop.display_name = name

    @api.depends("name", "parent_id.complete_name")
    def _compute_complete_name(self):
        for prop in self:
            if prop.parent_id:
                prop.complete_name = f"{prop.parent_id.complete_name} / {prop.name}"
            else:
                prop.complete_name = prop.name

    @api.depends("tz", "parent_id.effective_tz", "company_id.partner_id.tz")
    def _compute_effective_tz(self):
        for prop in self:
            prop.effective_tz = (
                prop.tz or prop.parent_id.effective_tz or prop.company_id.partner_id.tz or "UTC"
            )

    @api.depends("kind", "parent_id.site_id", "parent_id.building_id", "parent_id.floor_id")
    def _compute_ancestors(self):
        for prop in self:
            for kind, fname in ANCESTOR_FIELDS.items():
                prop[fname] = prop if prop.kind == kind else prop.parent_id[fname]

    def _compute_counts(self):
        counts = dict.fromkeys(self.ids, 0)
        for parent, count in self.env["prepaid.property"]._read_group(
            [("parent_id", "in", self.ids)], ["parent_id"], ["__count"]
        ):
            counts[parent.id] = count
        Tenancy = self.env["prepaid.tenancy"]
        Account = self.env["prepaid.account"]
        for prop in self:
            prop.child_count = counts.get(prop.id, 0)
            if not prop.id:
                prop.tenancy_count = prop.account_count = 0
                continue
            prop.tenancy_count = Tenancy.search_count([("unit_ids", "child_of", prop.id)])
            prop.account_count = Account.search_count([("unit_ids", "child_of", prop.id)])

    @api.onchange("parent_id")
    def _onchange_parent_id(self):
        if not self.parent_id:
            return
        self.company_id = self.parent_id.company_id
        # A time zone equal to the parent's is redundant: clear it so that it keeps following the parent.
        if self.tz and self.tz == self.parent_id.effective_tz:
            self.tz = False

    @api.constrains("kind", "parent_id")
    def _check_kind_hierarchy(self):
        if self._has_cycle():
            raise ValidationError(self.env._("A property cannot be its own ancestor."))
        # Children are checked too: changing a parent's kind may leave them under the wrong kind.
        for prop in self | self.child_ids:
            parent_kind = prop.parent_id.kind if prop.parent_id else False
            if parent_kind not in ALLOWED_PARENT_KINDS[prop.kind]:
                kinds = dict(self._fields["kind"]._description_selection(self.env))
                allowed = [kinds[kind] for kind in ALLOWED_PARENT_KINDS[prop.kind] if kind]
                raise ValidationError(
                    self.env._(
                        "%(property)s is a %(kind)s: its parent must be one of: %(allowed)s.",
                        property=prop.display_name,
                        kind=kinds[prop.kind],
                        allowed=", ".join(allowed) or self.env._("none"),
                    )
                    if parent_kind
                    else self.env._(
                        "%(property)s is a %(kind)s: it needs a parent (%(allowed)s).",
                        property=prop.display_name,
                        kind=kinds[prop.kind],
                        allowed=", ".join(allowed),
                    )
                )

    @api.constrains("company_id")
    def _check_children_company(self):
        for prop in self:
            if prop.child_ids.filtered(lambda child, prop=prop: child.company_id != prop.company_id):
                raise ValidationError(
                    self.env._(
                        "The children of %(property)s must belong to its company.", property=prop.display_name
                    )
                )

    @api.constrains("settlement_cycle", "settlement_day")
    def _check_settlement_day(self):
        limits = {"monthly": 31, "weekly": WEEKDAYS}
        for prop in self:
            limit = limits.get(prop.settlement_cycle)
            if limit and not 1 <= prop.settlement_day <= limit:
                raise ValidationError(
                    self.env._(
                        "The settlement day of %(property)s must be between 1 and %(limit)s.",
                        property=prop.display_name,
                        limit=limit,
                    )
                )

    @api.constrains("electricity_tariff_id", "water_tariff_id")
    def _check_tariff_utility(self):
        for prop in self:
            for utility, fname in TARIFF_FIELDS.items():
                if prop[fname] and prop[fname].utility != utility:
                    raise ValidationError(
                        self.env._(
                            "Tariff %(tariff)s cannot be used as the %(field)s of %(property)s.",
                            tariff=prop[fname].display_name,
                            field=self._fields[fname]._description_string(self.env),
                            property=prop.display_name,
                        )
                    )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_in_use(self):
        # sudo: the account or tenancy may be invisible to the current user, it still uses the unit.
        accounts = (
            self.env["prepaid.account"]
            .sudo()
            .search([("unit_ids", "in", self.ids), ("state", "!=", "closed")], limit=1)
        )
        tenancies = (
            self.env["prepaid.tenancy"]
            .sudo()
            .search([("unit_ids", "in", self.ids), ("state", "in", ("draft", "active"))], limit=1)
        )
        if accounts or tenancies:
            raise UserError(
                self.env._(
                    "%(properties)s cannot be deleted: an account or a tenancy still uses it. "
                    "Archive it instead.",
                    properties=", ".join(self.mapped("display_name")),
                )
            )

    def _get_ancestor_chain_ids(self):
        """The ids from this property up to its root, nearest first (from ``parent_path``)."""
        self.ensure_one()
        return [int(pid) for pid in reversed(self.parent_path.split("/")[:-1])]

    def _get_effective_tariffs(self, utility):
        """Batch version of :meth:`_get_effective_tariff`: ``{property id: prepaid.tariff (maybe empty)}``.

        Each property takes its own tariff for ``utility``, else the nearest ancestor's. Reads the whole
        chain of every property in one go (ancestors are known from ``parent_path``).
        """
        fname = TARIFF_FIELDS[utility]
        self.flush_recordset(["parent_path"])
        chains = {prop.id: prop._get_ancestor_chain_ids() for prop in self}
        nodes = self.sudo().browse({pid for chain in chains.values() for pid in chain})
        tariff_of = {node.id: node[fname].id for node in nodes.with_context(active_test=False)}
        Tariff = self.env["prepaid.tariff"]
        return {
            prop_id: Tariff.browse(next((tariff_of[pid] for pid in chain if tariff_of.get(pid)), ()))
            for prop_id, chain in chains.items()
        }

    def _get_effective_tariff(self, utility):
        """The tariff that applies to this property for ``utility`` ('electricity' or 'water'): its own,
        else the nearest ancestor's; an empty recordset when none is set up the tree."""
        self.ensure_one()
        return self._get_effective_tariffs(utility)[self.id]

    def _get_units(self):
        """All units in these properties and below them (active ones)."""
        return self.search([("id", "child_of", self.ids), ("kind", "=", "unit")])

    def _action_open(self, model, name, domain, context=None):
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": model,
            "view_mode": "list,form",
            "domain": domain,
            "context": context or {},
        }

    def action_view_children(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_open(
            "prepaid.property",
            self.env._("Children of %(property)s", property=self.display_name),
            [("parent_id", "=", self.id)],
            {"default_parent_id": self.id, "default_company_id": self.company_id.id},
        )

    def action_view_tenancies(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_open(
            "prepaid.tenancy",
            self.env._("Tenancies"),
            [("unit_ids", "child_of", self.id)],
            {"default_company_id": self.company_id.id},
        )

    def action_view_accounts(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_open(
            "prepaid.account",
            self.env._("Prepaid Accounts"),
            [("unit_ids", "child_of", self.id)],
            {"default_company_id": self.company_id.id},
        )
