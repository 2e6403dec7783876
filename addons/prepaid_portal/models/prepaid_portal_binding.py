import secrets
from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError

ROLE_SELECTION = [("holder", "Holder"), ("member", "Member")]
VIA_SELECTION = [
    ("code", "Binding Code"),
    ("qr", "QR Code"),
    ("invitation", "Invitation"),
    ("staff", "Staff"),
]
# An invitation link is valid this long.
INVITATION_DAYS = 7


class PrepaidPortalBinding(models.Model):
    """A portal user allowed to see and recharge a prepaid account. Binding adds the user's contact to the
    account's portal users (``portal_partner_ids``, what the portal record rules read); revoking takes it
    away again. The tenant's own portal users (contacts of the tenant's company) see their accounts without
    a binding and are the account's holders; a user who bound by the account's code (or QR label) is a
    holder too; a user invited by a holder is a member. Holders invite and revoke members; staff manage
    everything from the account form. Every bind and revoke is written in the account's chatter.

    Records are made by the suite's own actions only (binding by code, QR or invitation, staff's Bind button
    in the account form), never by a raw create over RPC."""

    _name = "prepaid.portal.binding"
    _description = "Prepaid Portal Binding"
    _inherit = ["prepaid.guard.mixin"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = (
        "account_id",
        "user_id",
        "role",
        "via",
        "state",
        "invited_by_id",
        "revoked_by_id",
        "revoked_date",
    )
    _order = "state, create_date desc, id desc"
    _rec_name = "user_id"

    account_id = fields.Many2one(
        "prepaid.account", required=True, index=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    user_id = fields.Many2one(
        "res.users", string="Portal User", required=True, index=True, ondelete="cascade", readonly=True
    )
    partner_id = fields.Many2one(related="user_id.partner_id", store=True, string="Contact")
    role = fields.Selection(ROLE_SELECTION, required=True, default="member", readonly=True)
    via = fields.Selection(VIA_SELECTION, string="Bound By", required=True, readonly=True)
    state = fields.Selection(
        [("active", "Active"), ("revoked", "Revoked")], required=True, default="active", readonly=True
    )
    invited_by_id = fields.Many2one("res.users", readonly=True)
    revoked_by_id = fields.Many2one("res.users", readonly=True)
    revoked_date = fields.Datetime(readonly=True)

    def init(self):
        # One active binding per account and user.
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS prepaid_portal_binding_active_uniq "
            "ON prepaid_portal_binding (account_id, user_id) WHERE state = 'active'"
        )

    @api.model
    def _bind(self, account, user, role, via, invited_by=None):
        """Bind ``user`` to ``account`` (sudo records), or return the active binding it already has."""
        account.ensure_one()
        user.ensure_one()
        if not user._is_portal() and not user._is_internal():
            raise UserError(self.env._("Only portal users can be bound to an account."))
        existing = self.sudo().search(
            [("account_id", "=", account.id), ("user_id", "=", user.id), ("state", "=", "active")], limit=1
        )
        if existing:
            if role == "holder" and existing.role != "holder":
                internal(existing).write({"role": "holder"})
            return existing
        binding = internal(self.sudo()).create(
            [
                {
                    "account_id": account.id,
                    "user_id": user.id,
                    "role": role,
                    "via": via,
                    "invited_by_id": invited_by.id if invited_by else False,
                }
            ]
        )
        if user.partner_id not in account.portal_partner_ids:
            internal(account.sudo()).write({"portal_partner_ids": [Command.link(user.partner_id.id)]})
        account.sudo()._message_log(
            body=self.env._(
                "%(user)s was bound to this account on the portal (%(via)s, %(role)s).",
                user=user.name,
                via=dict(self._fields["via"]._description_selection(self.env))[via],
                role=dict(self._fields["role"]._description_selection(self.env))[role],
            )
        )
        return binding

    def _revoke(self, by_user):
        """Revoke these bindings: their users no longer see the account (unless bound otherwise)."""
        for binding in self.sudo().filtered(lambda b: b.state == "active"):
            internal(binding).write(
                {"state": "revoked", "revoked_by_id": by_user.id, "revoked_date": fields.Datetime.now()}
            )
            account = binding.account_id
            still_bound = self.sudo().search_count(
                [
                    ("account_id", "=", account.id),
                    ("partner_id", "=", binding.partner_id.id),
                    ("state", "=", "active"),
                ]
            )
            if not still_bound and binding.partner_id in account.portal_partner_ids:
                internal(account).write({"portal_partner_ids": [Command.unlink(binding.partner_id.id)]})
            account._message_log(
                body=self.env._(
                    "%(user)s no longer sees this account on the portal (revoked by %(by)s).",
                    user=binding.user_id.name,
                    by=by_user.name,
                )
            )
        return True

    def action_revoke(self):
        """Staff: revoke from the account form."""
        self.account_id.check_access("write")
        return self._revoke(self.env.user)


class PrepaidPortalInvitation(models.Model):
    """A link a holder shares with a family member, a roommate or a shop's staff: opened by a logged-in
    portal user it binds them to the account as a member. Single use, valid :data:`INVITATION_DAYS` days,
    revocable by the holder and by staff."""

    _name = "prepaid.portal.invitation"
    _description = "Prepaid Portal Invitation"
    _inherit = ["prepaid.guard.mixin"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = ("account_id", "token", "state", "expires", "accepted_by_id", "created_by_id")
    _order = "create_date desc, id desc"
    _rec_name = "account_id"

    account_id = fields.Many2one(
        "prepaid.account", required=True, index=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    token = fields.Char(required=True, readonly=True, copy=False, groups="base.group_system")
    created_by_id = fields.Many2one("res.users", string="Invited By", readonly=True)
    expires = fields.Datetime(required=True, readonly=True)
    state = fields.Selection(
        [("pending", "Pending"), ("accepted", "Accepted"), ("revoked", "Revoked")],
        required=True,
        default="pending",
        readonly=True,
    )
    accepted_by_id = fields.Many2one("res.users", readonly=True)

    _sql_constraints = [("token_uniq", "UNIQUE(token)", "An invitation token is unique.")]

    @api.model
    def _invite(self, account, by_user):
        invitation = internal(self.sudo()).create(
            [
                {
                    "account_id": account.id,
                    "token": secrets.token_urlsafe(24),
                    "created_by_id": by_user.id,
                    "expires": fields.Datetime.now() + timedelta(days=INVITATION_DAYS),
                }
            ]
        )
        account.sudo()._message_log(
            body=self.env._("%(user)s created a portal invitation to this account.", user=by_user.name)
        )
        return invitation

    @api.model
    def _find_pending(self, token):
        if not token or not isinstance(token, str) or len(token) > 64:
            return self.sudo().browse()
        invitation = self.sudo().search([("token", "=", token)], limit=1)
        if (
            not invitation
            or invitation.state != "pending"
            or invitation.expires < fields.Datetime.now()
            or invitation.account_id.state == "closed"
        ):
            return self.sudo().browse()
        return invitation

    def _accept(self, user):
        self.ensure_one()
        if self.state != "pending":
            raise AccessError(self.env._("This invitation was already used or revoked."))
        binding = self.env["prepaid.portal.binding"]._bind(
            self.account_id, user, "member", "invitation", invited_by=self.created_by_id
        )
        internal(self.sudo()).write({"state": "accepted", "accepted_by_id": user.id})
        return binding

    def _revoke(self):
        internal(self.sudo().filtered(lambda i: i.state == "pending")).write({"state": "revoked"})
        return True


class PrepaidPortalAttempt(models.Model):
    """One attempt to bind an account on the portal (code or QR): the log staff read, and what the rate
    limits count."""

    _name = "prepaid.portal.attempt"
    _description = "Prepaid Portal Binding Attempt"
    _order = "create_date desc, id desc"
    _rec_name = "account_number"
    _log_access = False

    create_date = fields.Datetime(string="Date", readonly=True, index=True, default=fields.Datetime.now)
    user_id = fields.Many2one(
        "res.users", string="Portal User", readonly=True, index=True, ondelete="cascade"
    )
    account_number = fields.Char(string="Account Number Entered", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True, index="btree_not_null", ondelete="cascade")
    company_id = fields.Many2one("res.company", readonly=True)
    via = fields.Selection(VIA_SELECTION, readonly=True)
    success = fields.Boolean(readonly=True)
    ip_address = fields.Char(string="IP Address", readonly=True)
