from collections import defaultdict
from datetime import UTC, timedelta

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_account import LEVEL_SELECTION, PROTECTED_FIELDS
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.addons.prepaid_base.tools.bulk_sql import id_array
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from prepaid_engine.levels import USAGE_DAYS, days_left, supervise

# The command that cuts / restores the supply of a meter, per utility.
CUT_COMMAND = {"electricity": "trip", "water": "valve_close"}
RESTORE_COMMAND = {"electricity": "close", "water": "valve_open"}
PENDING_COMMAND_STATES = ("queued", "sent")
LIVE_STATES = ("open", "suspended")
# What the level supervision keeps: the suite's own writes only.
SUPERVISION_FIELDS = (
    "alert_level",
    "last_alert_level",
    "last_alert_date",
    "last_alert_message",
    "supply_cut",
)
SUPERVISE_BATCH = 2000  # accounts per call of the supervision cron
FEE_EXEMPTION_LOOKBACK_DAYS = 40  # longer than any settlement cycle: fees older than it are never exempt
# Accounts whose alerts or supply do not match their level: the level differs from the alerted one, or the
# supply is (or is not) held cut while it should (not) be. A superset of what supervise() acts on (it also
# weighs whether the platform bills any of the account's meters), cheap to screen thousands of accounts.
NEEDS_SUPERVISION = SQL(
    """a.state IN ('open', 'suspended')
       AND (a.level IS DISTINCT FROM COALESCE(a.alert_level, 'normal')
            OR (a.level = 'cutoff' AND NOT COALESCE(a.keep_power, FALSE)) <> COALESCE(a.supply_cut, FALSE))"""
)

# The account's home building (alias ``u.building_id``, NULL without units) joined to ``prepaid_account a``:
# the building of its first unit by id. Statements (their calendar) and the monthly ledger (where fees and
# shares count) read the account's building by this one rule.
HOME_BUILDING_JOIN = SQL(
    """LEFT JOIN LATERAL (
            SELECT p.building_id FROM prepaid_account_unit_rel r
              JOIN prepaid_property p ON p.id = r.unit_id
             WHERE r.account_id = a.id ORDER BY p.id LIMIT 1) u ON TRUE"""
)

# Alert templates per kind of level.
SMS_TEMPLATES = {
    "warning": "prepaid_billing.sms_template_low_balance",
    "cutoff": "prepaid_billing.sms_template_cutoff",
}
MAIL_TEMPLATES = {
    "warning": "prepaid_billing.mail_template_low_balance",
    "cutoff": "prepaid_billing.mail_template_cutoff",
}


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"
    _prepaid_protected_fields = (*PROTECTED_FIELDS, *SUPERVISION_FIELDS)

    topup_ids = fields.One2many("prepaid.topup", "account_id", string="Top-ups", readonly=True)
    topup_count = fields.Integer(compute="_compute_topup_count")
    alert_level = fields.Selection(
        LEVEL_SELECTION,
        string="Alerted Level",
        default="normal",
        readonly=True,
        copy=False,
        help="The most severe level the tenant was alerted of since the balance last rose: each level is "
        "notified once per descent.",
    )
    last_alert_level = fields.Selection(LEVEL_SELECTION, readonly=True, copy=False)
    last_alert_date = fields.Datetime(string="Last Alert", readonly=True, copy=False)
    last_alert_message = fields.Char(
        readonly=True, copy=False, help="The last alert sent to the tenant, as the portal shows it."
    )
    supply_cut = fields.Boolean(
        readonly=True,
        copy=False,
        help="The platform holds this account's supply cut (its balance is at the cut-off level): restored "
        "as soon as the balance is above it.",
    )
    pending_command_ids = fields.Many2many(
        "prepaid.meter.command", string="Pending Commands", compute="_compute_pending_commands"
    )
    pending_command_count = fields.Integer(compute="_compute_pending_commands")
    cutoff_threshold = fields.Monetary(
        string="Cut-off Threshold",
        compute="_compute_cutoff_threshold",
        help="The balance at or below which the supply is cut: cut-off level minus overdraft allowance.",
    )
    days_left = fields.Integer(
        compute="_compute_days_left",
        help="How many days the balance lasts at the average daily charge of the last "
        f"{USAGE_DAYS} days (empty when nothing was charged in that time).",
    )

    def _compute_topup_count(self):
        counts = dict(
            self.env["prepaid.topup"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.topup_count = counts.get(account, 0)

    @api.model_create_multi
    def create(self, vals_list):
        accounts = super().create(vals_list)
        accounts.company_id._prepaid_turn_on()  # a company's first prepaid account turns prepaid on
        return accounts

    def _compute_pending_commands(self):
        commands = self.env["prepaid.meter.command"].search(
            [("meter_id.account_id", "in", self.ids), ("state", "in", PENDING_COMMAND_STATES)]
        )
        for account in self:
            mine = commands.filtered(lambda c, account=account: c.meter_id.account_id == account)
            account.pending_command_ids = mine
            account.pending_command_count = len(mine)

    def _compute_days_left(self):
        """From the daily consumption facts (one grouped query for all of ``self``), never the readings: the
        average daily charge over the last :data:`USAGE_DAYS` days, or over the days since the first fact
        when the account has less history than that (a new tenant's first days are not diluted)."""
        today = fields.Date.context_today(self)
        since = today - timedelta(days=USAGE_DAYS - 1)
        charged = {
            account: (amount, first)
            for account, amount, first in self.env["prepaid.consumption"]
            .sudo()
            ._read_group(
                [("account_id", "in", self.ids), ("day", ">=", since), ("day", "<=", today)],
                ["account_id"],
                ["amount:sum", "day:min"],
            )
        }
        for account in self:
            amount, first = charged.get(account, (0.0, today))
            money = account.currency_id.round  # float sums as the money they are (no 9.999...)
            account.days_left = days_left(
                money(account.balance - account._get_cutoff_threshold()),
                money(amount or 0.0),
                (today - first).days + 1,
            )

    def _prepaid_days_left_text(self):
        """'about N days left' for the tenant's messages, or '' when the usage says nothing."""
        self.ensure_one()
        if not self.days_left:
            return ""
        return self.env._("about %(days)s days left at your recent usage", days=self.days_left)

    @api.depends("cutoff_level", "overdraft_limit")
    def _compute_cutoff_threshold(self):
        for account in self:
            account.cutoff_threshold = account._get_cutoff_threshold()

    def write(self, vals):
        result = super().write(vals)
        if any(
            fname in vals
            for fname in (
                "warn_level_1",
                "warn_level_2",
                "warn_level_3",
                "cutoff_level",
                "overdraft_limit",
                "keep_power",
            )
        ):
            # New levels or keep-power: the account is held to its (new) level at once.
            self.sudo()._prepaid_supervise()
        return result

    # ------------------------------------------------------------------ levels: alerts, cut-off, restore

    def _on_balance_changed(self, old_balances):
        res = super()._on_balance_changed(old_balances)
        self._prepaid_supervise()
        return res

    def _on_state_changed(self, old_states):
        res = super()._on_state_changed(old_states)
        closed = self.filtered(lambda a: a.state == "closed")
        if closed:
            # A closed account bills nothing: every meter of it is cut (trip / valve close), whatever the
            # billing mode, and the platform holds it cut until the account is reopened and funded.
            cuts = [
                vals
                for account in closed
                for vals in account._prepaid_supply_command_vals(
                    account.meter_ids.filtered("active"), CUT_COMMAND, "manual"
                )
            ]
            if cuts:
                self.env["prepaid.meter.command"].sudo()._enqueue(cuts, urgent=True)
            internal(closed).sudo().write({"supply_cut": True})
        (self - closed).sudo()._prepaid_supervise()
        return res

    def _prepaid_is_supervised(self):
        """Whether the platform watches this account's level: it has no meter yet or at least one meter billed
        by the platform. Accounts whose meters all bill themselves (meter-side billing) are warned and cut by
        their meters."""
        self.ensure_one()
        meters = self.meter_ids.filtered("active")
        return not meters or any(meter.billing_mode == "platform" for meter in meters)

    @api.private
    def _prepaid_supervise(self):
        """Hold these accounts to their level (the engine's rule, :func:`prepaid_engine.levels.supervise`):
        alert each level once per descent, cut the supply while at the cut-off level, restore it as soon as
        the balance is above it. A rule on states, not on crossings: an account already at a level (opened
        at the cut-off, new levels, keep-power switched off) gets the same alert and cut-off as one that just
        fell to it.

        Runs after every balance change (the account rows are locked by the posting), after the state buttons
        and changes of levels, and from the supervision cron. One query screens the accounts
        (:data:`NEEDS_SUPERVISION`): most balance changes move no level; only the others go through the ORM.

        :return: the accounts acted on.
        """
        if not self:
            return self
        self.flush_recordset(["balance", "level", "alert_level", "state", "keep_power", "supply_cut"])
        ids = [
            row[0]
            for row in self.env.execute_query(
                SQL(
                    "SELECT a.id FROM prepaid_account a WHERE a.id = ANY(%s::int[]) AND %s ORDER BY a.id",
                    id_array(self.ids),
                    NEEDS_SUPERVISION,
                )
            )
        ]
        if not ids:
            return self.browse()
        accounts = self.browse(ids).sudo()
        # An account is supervised from its first ledger line on: opening an account that is not funded yet
        # neither alerts the tenant nor cuts meters before the cashier's first top-up.
        funded = {
            row[0]
            for row in self.env.execute_query(
                SQL(
                    """SELECT a.id FROM unnest(%s::int[]) AS a(id)
                        WHERE EXISTS (SELECT 1 FROM prepaid_ledger l WHERE l.account_id = a.id)""",
                    id_array(ids),
                )
            )
        }
        now = fields.Datetime.now()
        exempt = accounts._prepaid_fee_exemptions(now)
        writes, notify, cut, restore = defaultdict(list), defaultdict(list), [], []
        for account in accounts:
            level = account.level or "normal"
            if account.id in exempt:
                level = account._get_level(account.balance + exempt[account.id])
            action = supervise(
                level,
                account.alert_level,
                account.supply_cut,
                keep_power=account.keep_power,
                supervised=account.id in funded and account._prepaid_is_supervised(),
            )
            vals = {}
            if str(action.alerted) != (account.alert_level or "normal"):
                vals["alert_level"] = str(action.alerted)
            if action.supply_cut != account.supply_cut:
                vals["supply_cut"] = action.supply_cut
            if action.notify:
                vals.update(last_alert_level=str(action.notify), last_alert_date=now)
                notify[str(action.notify)].append(account.id)
            if vals:
                writes[tuple(sorted(vals.items()))].append(account.id)
            if action.cut is True:
                cut.append(account.id)
            elif action.cut is False:
                restore.append(account.id)
        for vals, account_ids in writes.items():
            internal(self.browse(account_ids)).sudo().write(dict(vals))
        for level, account_ids in notify.items():
            self.browse(account_ids).sudo()._prepaid_send_alerts(level)
        if cut:
            self.browse(cut).sudo()._prepaid_queue_supply(CUT_COMMAND, urgent=False)
        if restore:
            self.browse(restore).sudo()._prepaid_queue_supply(RESTORE_COMMAND, urgent=True)
        return accounts

    @api.model
    def _prepaid_home_buildings(self, account_ids):
        """``{account id: building id or None}`` (:data:`HOME_BUILDING_JOIN`)."""
        return dict(
            self.env.execute_query(
                SQL(
                    "SELECT a.id, u.building_id FROM prepaid_account a %s WHERE a.id = ANY(%s::int[])",
                    HOME_BUILDING_JOIN,
                    id_array(account_ids),
                )
            )
        )

    def _prepaid_fee_exemptions(self, now):
        """``{account id: amount}``: for accounts at the cut-off level whose company exempts fees from it
        (``prepaid_fee_no_cutoff``), the fees deducted since the start of the current settlement cycle of
        the charge's building. Their level for the supply (and the alerts) is the balance's without them."""
        at_cutoff = self.filtered(lambda a: a.level == "cutoff" and a.company_id.prepaid_fee_no_cutoff)
        if not at_cutoff:
            return {}
        rows = self.env.execute_query(
            SQL(
                """SELECT account_id, property_id, charged_at, amount::text FROM prepaid_fee_charge
                    WHERE account_id = ANY(%s) AND state = 'posted' AND charged_at >= %s""",
                at_cutoff.ids,
                now - timedelta(days=FEE_EXEMPTION_LOOKBACK_DAYS),
            )
        )
        Property = self.env["prepaid.property"].sudo()
        starts, exempt = {}, defaultdict(float)
        for account_id, property_id, charged_at, amount in rows:
            if property_id not in starts:
                starts[property_id] = (
                    Property.browse(property_id)._prepaid_current_cycle_start(now.replace(tzinfo=UTC))
                    if property_id
                    else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
                )
            if charged_at.replace(tzinfo=UTC) >= starts[property_id]:
                exempt[account_id] += float(amount)
        return dict(exempt)

    @api.model
    def _cron_supervise(self):
        """Hold every live account to its level: what no balance change did (accounts opened at a level,
        levels or keep-power changed, meters added), in batches of :data:`SUPERVISE_BATCH`."""
        self.env["prepaid.account"].flush_model()
        ids = [
            row[0]
            for row in self.env.execute_query(
                SQL("SELECT a.id FROM prepaid_account a WHERE %s ORDER BY a.id", NEEDS_SUPERVISION)
            )
        ]
        acted = 0
        for start in range(0, len(ids), SUPERVISE_BATCH):
            acted += len(self.sudo().browse(ids[start : start + SUPERVISE_BATCH])._prepaid_supervise())
        return acted

    def _prepaid_send_alerts(self, level):
        """SMS (queued for the SMS cron), e-mail and a chatter message the tenant sees on the portal."""
        kind = "cutoff" if level == "cutoff" else "warning"
        sms_template = self.env.ref(SMS_TEMPLATES[kind], raise_if_not_found=False)
        mail_template = self.env.ref(MAIL_TEMPLATES[kind], raise_if_not_found=False)
        levels = dict(self._fields["alert_level"]._description_selection(self.env))
        for account in self:
            recipients = account.partner_id
            if sms_template:
                body = sms_template._render_field("body", account.ids, compute_lang=True)[account.id]
                internal(account).last_alert_message = body
                account._message_sms(body, partner_ids=recipients.ids, put_in_queue=True)
            if mail_template:
                subject = mail_template._render_field("subject", account.ids, compute_lang=True)[account.id]
                body = mail_template._render_field("body_html", account.ids, compute_lang=True)[account.id]
                # From the property office (the company), not from whoever's action moved the balance.
                account.with_context(mail_notify_force_send=False).message_post(
                    author_id=account.company_id.partner_id.id,
                    body=body,
                    subject=subject,
                    partner_ids=recipients.ids,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )
            if not (sms_template or mail_template):
                account.message_post(
                    body=self.env._("Balance alert: %(level)s.", level=levels[level]),
                    subtype_xmlid="mail.mt_note",
                )

    def _prepaid_platform_meters(self):
        return self.meter_ids.filtered(lambda m: m.active and m.billing_mode == "platform")

    def _prepaid_supply_command_vals(self, meters, kinds, reason):
        """The values of the supply command ``kinds[utility]`` of each of ``meters`` whose utility is in
        ``kinds``, on behalf of this account."""
        self.ensure_one()
        return [
            {
                "meter_id": meter.id,
                "kind": kinds[meter.utility],
                "reason": reason,
                "res_model": self._name,
                "res_id": self.id,
                "origin": self.name,
            }
            for meter in meters
            if meter.utility in kinds
        ]

    def _prepaid_queue_supply(self, kinds, urgent):
        """Queue, for each platform-billed meter of these accounts, the command ``kinds[utility]``."""
        vals_list = [
            vals
            for account in self
            for vals in account._prepaid_supply_command_vals(
                account._prepaid_platform_meters(), kinds, "automatic"
            )
        ]
        if vals_list:
            self.env["prepaid.meter.command"].sudo()._enqueue(vals_list, urgent=urgent)

    # ------------------------------------------------------------------ top-up, reversal, refund

    def _prepaid_last_topup(self):
        self.ensure_one()
        return self.env["prepaid.topup"].search(
            [("account_id", "=", self.id), ("state", "in", ("done", "reversed"))],
            order="date desc, id desc",
            limit=1,
        )

    def _prepaid_check_manager(self):
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can do this."))

    def _prepaid_wizard_action(self, model, name):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": model,
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_open_topup_wizard(self):
        self.check_access("write")
        return self._prepaid_wizard_action("prepaid.topup.wizard", self.env._("Top Up"))

    def action_open_reverse_wizard(self):
        self._prepaid_check_manager()
        return self._prepaid_wizard_action("prepaid.reverse.wizard", self.env._("Reverse Last Top-up"))

    def action_open_refund_wizard(self):
        self._prepaid_check_manager()
        return self._prepaid_wizard_action("prepaid.refund.wizard", self.env._("Refund and Close"))

    def action_view_topups(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_billing.prepaid_topup_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    def action_view_pending_commands(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_meter_command_action"
        )
        action["domain"] = [("id", "in", self.pending_command_ids.ids)]
        return action

    @api.private
    def _refund_and_close(self, journal, reason=None):
        """Give the remaining balance back and close the account: an ``out_refund`` on the top-up product for
        the balance, an outbound payment through ``journal`` reconciled with it, a ledger refund line
        (``refund:<credit note id>``), a trip (valve close) per meter, then the account is closed."""
        self.ensure_one()
        self._prepaid_check_manager()
        # The account first (the suite's lock order): its balance cannot move until this commits.
        self._prepaid_lock()
        if self.state not in LIVE_STATES:
            raise UserError(self.env._("Account %(account)s is not open.", account=self.name))
        currency = self.currency_id
        if currency.compare_amounts(self.balance, 0) < 0:
            raise UserError(
                self.env._(
                    "Account %(account)s owes %(amount)s: collect it with a top-up before closing.",
                    account=self.name,
                    amount=currency.format(-self.balance),
                )
            )
        refund = self.env["account.move"]
        payment = self.env["account.payment"]
        if not currency.is_zero(self.balance):
            self.company_id._prepaid_ensure_setup()
            amount = self.balance
            refund = (
                self.env["account.move"]
                .sudo()
                .with_company(self.company_id)
                .create([self._prepare_refund_vals(amount, reason)])
            )
            refund.action_post()
            payment = self.env["prepaid.topup"]._pay_refund(refund, journal, reason or self.name)
            self.sudo()._post_ledger(
                [
                    {
                        "account_id": self.id,
                        "kind": "refund",
                        "amount": -amount,
                        "idempotency_key": f"refund:{refund.id}",
                        "res_model": "account.move",
                        "res_id": refund.id,
                    }
                ]
            )
        # Closing trips every meter of the account (see _on_state_changed).
        self.action_close()
        self._message_log(
            body=self.env._(
                "Closed by %(user)s. Refunded %(amount)s (%(refund)s, %(payment)s).",
                user=self.env.user.name,
                amount=currency.format(-sum(refund.mapped("amount_total_signed")) if refund else 0.0),
                refund=refund.name or "-",
                payment=payment.name or "-",
            )
        )
        return refund

    def _prepare_refund_vals(self, amount, reason):
        self.ensure_one()
        company = self.company_id
        product = company.prepaid_topup_product_id
        return {
            "move_type": "out_refund",
            "partner_id": self.partner_id.id,
            "company_id": company.id,
            "currency_id": self.currency_id.id,
            "invoice_date": fields.Date.context_today(self),
            "ref": self.env._("Closure of %(account)s: %(reason)s", account=self.name, reason=reason or "-"),
            "invoice_line_ids": [
                fields.Command.create(
                    {
                        "product_id": product.id,
                        "name": self.env._("Refund of prepaid credit of %(account)s", account=self.name),
                        "quantity": 1.0,
                        "price_unit": amount,
                        "account_id": company.prepaid_deposit_account_id.id,
                        "tax_ids": [fields.Command.clear()],
                    }
                )
            ],
        }


class PrepaidAccountStatements(models.Model):
    _inherit = "prepaid.account"

    statement_ids = fields.One2many("prepaid.statement", "account_id", string="Statements", readonly=True)
    statement_count = fields.Integer(compute="_compute_statement_count")

    def _compute_statement_count(self):
        counts = dict(
            self.env["prepaid.statement"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.statement_count = counts.get(account, 0)

    def action_view_statements(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_billing.prepaid_statement_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"create": False}
        return action
