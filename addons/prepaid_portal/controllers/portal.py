"""The tenant's pages on the customer portal (``/my/prepaid``) and the online recharge.

Every route that takes an id first checks that the logged-in user may see the account it belongs to, as the
user (record rules for ``base.group_portal``) and by binding (:meth:`prepaid.account._prepaid_portal_role`),
and only then reads with sudo. An id the user may not see is a 404, whatever the reason (another tenant's,
revoked, made up), so nothing tells an attacker which ids exist.
"""

import json
import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from odoo import Command, fields, http
from odoo.addons.account_payment.controllers.portal import PortalAccount
from odoo.addons.portal.controllers.portal import pager as portal_pager
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request
from werkzeug.exceptions import NotFound

from prepaid_engine.billing import compare

_logger = logging.getLogger(__name__)

LEDGER_PAGE_SIZE = 20
# The widest amount text the recharge form accepts (digits, a dot, decimals).
MAX_AMOUNT_CHARS = 16
UTILITY_ORDER = ("electricity", "water")
BANDS = ("sharp", "peak", "flat", "valley")
WHOLE_PERCENT = Decimal(1)
USAGE_MONTHS = 24  # the monthly chart: 12 months, each beside the same month a year before


def _parse_amount(text, currency):
    """The amount typed or tapped on the recharge form, or None if it is not a plain positive number with at
    most the currency's decimals."""
    if not isinstance(text, str) or not text.strip() or len(text.strip()) > MAX_AMOUNT_CHARS:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0:
        return None
    if -value.as_tuple().exponent > currency.decimal_places:
        return None
    return value


def _percent_change(current, previous):
    """'+12' / '-5' / '+0': this month against last month in whole per cent, by the engine's month-over-month
    rule (:func:`prepaid_engine.billing.compare`); '' when last month is zero (no basis)."""
    change = compare(Decimal(repr(current)), Decimal(repr(previous)), places=WHOLE_PERCENT)
    return "" if change.percent is None or not previous else f"{change.percent:+}"


class PrepaidPortal(PortalAccount):
    # ------------------------------------------------------------------ helpers

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "prepaid_count" in counters:
            Account = request.env["prepaid.account"]
            values["prepaid_count"] = (
                Account.search_count([("state", "!=", "draft")]) if Account.has_access("read") else 0
            )
        return values

    def _prepaid_portal_record(self, model, record_id):
        """The record ``record_id`` of ``model`` if the user may read it (record rules), else 404: a made-up,
        foreign or absurd id looks the same. Returned as the user (the caller checks the binding)."""
        try:
            record = request.env[model].browse(int(record_id)).exists()
            if not record:
                raise NotFound()
            record.check_access("read")
        except (AccessError, MissingError, ValueError, OverflowError) as error:
            raise NotFound() from error
        return record

    def _prepaid_account(self, account_id):
        """The account ``account_id`` as sudo, if the user may see it; else 404."""
        account = self._prepaid_portal_record("prepaid.account", account_id).sudo()
        if account.state == "draft" or not account._prepaid_portal_role(request.env.user):
            raise NotFound()
        return account

    def _prepaid_topup(self, topup_id):
        """The portal-visible top-up ``topup_id`` as sudo, if its account is the user's; else 404."""
        topup = self._prepaid_portal_record("prepaid.topup", topup_id).sudo()
        self._prepaid_account(topup.account_id.id)
        return topup

    def _prepaid_statement(self, statement_id):
        """The dispatched statement ``statement_id`` as sudo, if its account is the user's; else 404."""
        try:
            statement = request.env["prepaid.statement"].browse(int(statement_id)).exists()
            if not statement:
                raise NotFound()
            statement.check_access("read")
        except (AccessError, MissingError, ValueError, OverflowError) as error:
            raise NotFound() from error
        statement = statement.sudo()
        if statement.state != "dispatched":
            raise NotFound()
        self._prepaid_account(statement.account_id.id)
        return statement

    def _prepaid_local_today(self, account):
        """Today in the account's property time zone (the day the consumption facts are counted on)."""
        tz = account.unit_ids[:1].effective_tz or request.env.user.tz or "UTC"
        return fields.Datetime.context_timestamp(
            request.env.user.with_context(tz=tz), fields.Datetime.now()
        ).date()

    # ------------------------------------------------------------------ usage (daily facts)

    def _prepaid_usage(self, account, today):
        """Chart data per utility and each meter's use, from the daily consumption facts of the account, in
        one grouped query (utility, meter, day) over the months the charts show: the last 30 days (quantity
        per band, amount), the last 12 months with the same month a year before, this month against last
        month, and each meter's today and this month. Returns ``(usage per utility, {meter id: {today,
        month}})``."""
        Consumption = request.env["prepaid.consumption"].sudo()
        start_daily = today - timedelta(days=29)
        this_month = today.replace(day=1)
        rows = Consumption._read_group(
            [
                ("account_id", "=", account.id),
                ("day", ">=", this_month - relativedelta(months=USAGE_MONTHS - 1)),
                ("day", "<=", today),
            ],
            ["utility", "meter_id", "day:day"],
            ["quantity:sum", "amount:sum", *(f"{band}:sum" for band in BANDS)],
        )
        zero = (0.0,) * (2 + len(BANDS))
        daily = defaultdict(dict)  # utility -> day -> (quantity, amount, *bands)
        monthly = defaultdict(lambda: defaultdict(float))  # utility -> first of month -> quantity
        meters = defaultdict(lambda: {"today": 0.0, "month": 0.0})
        for utility, meter, day, *sums in rows:
            monthly[utility][day.replace(day=1)] += sums[0]
            if day >= start_daily:
                known = daily[utility].get(day, zero)
                daily[utility][day] = tuple(a + b for a, b in zip(known, sums, strict=True))
            if day >= this_month:
                meters[meter.id]["month"] += sums[0]
                if day == today:
                    meters[meter.id]["today"] += sums[0]
        days = [start_daily + timedelta(days=i) for i in range(30)]
        months = [this_month - relativedelta(months=11 - i) for i in range(12)]
        usage = {}
        for utility in UTILITY_ORDER:
            by_day, by_month = daily.get(utility, {}), monthly.get(utility, {})
            if not by_day and not by_month:
                continue
            bands_used = [b for i, b in enumerate(BANDS) if any(v[2 + i] for v in by_day.values())]
            current, previous = by_month.get(months[-1], 0.0), by_month.get(months[-2], 0.0)
            usage[utility] = {
                "days": [d.strftime("%m-%d") for d in days],
                "quantity": [round(by_day.get(d, zero)[0], 3) for d in days],
                "amount": [round(by_day.get(d, zero)[1], 2) for d in days],
                "bands": {
                    band: [round(by_day.get(d, zero)[2 + BANDS.index(band)], 3) for d in days]
                    for band in bands_used
                },
                "months": [m.strftime("%Y-%m") for m in months],
                "month_quantity": [round(by_month.get(m, 0.0), 3) for m in months],
                "last_year_quantity": [
                    round(by_month.get(m - relativedelta(years=1), 0.0), 3) for m in months
                ],
                "this_month": round(current, 3),
                "last_month": round(previous, 3),
                "month_change": _percent_change(round(current, 3), round(previous, 3)),
                "today": round(by_day.get(today, zero)[0], 3),
            }
        meter_usage = {meter.id: meters[meter.id] for meter in account.meter_ids}
        return usage, meter_usage

    # ------------------------------------------------------------------ pages

    @http.route(["/my/prepaid", "/my/prepaid/accounts"], type="http", auth="user", website=True)
    def portal_my_prepaid(self, **kw):
        accounts = request.env["prepaid.account"].search([("state", "!=", "draft")], order="name")
        accounts = accounts.sudo().filtered(lambda a: a._prepaid_portal_role(request.env.user))
        values = self._prepare_portal_layout_values()
        values.update({"accounts": accounts, "page_name": "prepaid"})
        return request.render("prepaid_portal.portal_my_prepaid_accounts", values)

    @http.route(
        ["/my/prepaid/accounts/<int:account_id>", "/my/prepaid/accounts/<int:account_id>/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_prepaid_account(self, account_id, page=1, topup=None, **kw):
        account = self._prepaid_account(account_id)
        user = request.env.user
        today = self._prepaid_local_today(account)
        Ledger = request.env["prepaid.ledger"].sudo()
        ledger_domain = [("account_id", "=", account.id)]
        ledger_count = Ledger.search_count(ledger_domain)
        pager = portal_pager(
            url=f"/my/prepaid/accounts/{account.id}",
            total=ledger_count,
            page=page,
            step=LEDGER_PAGE_SIZE,
            url_args={},
        )
        ledger = Ledger.search(
            ledger_domain, order="date desc, id desc", limit=LEDGER_PAGE_SIZE, offset=pager["offset"]
        )
        topups = (
            request.env["prepaid.topup"]
            .sudo()
            .search([("account_id", "=", account.id), ("state", "in", ("done", "reversed"))], limit=10)
        )
        notices = (
            request.env["mail.message"]
            .sudo()
            .search(
                [
                    ("model", "=", "prepaid.account"),
                    ("res_id", "=", account.id),
                    ("message_type", "in", ("comment", "sms")),
                    ("subtype_id.internal", "=", False),
                ],
                limit=10,
            )
        )
        statements = (
            request.env["prepaid.statement"]
            .sudo()
            .search([("account_id", "=", account.id), ("state", "=", "dispatched")], limit=12)
        )
        just_paid = request.env["prepaid.topup"]
        if topup:
            try:
                just_paid = self._prepaid_topup(topup)
            except NotFound:
                just_paid = request.env["prepaid.topup"]
        role = account._prepaid_portal_role(user)
        usage, meter_usage = self._prepaid_usage(account, today)
        # The page's script draws with these words: Odoo's portal (without the website app) loads no
        # translations for scripts, so they come translated with the page.
        env = request.env
        labels = {
            "sharp": env._("Sharp"),
            "peak": env._("Peak"),
            "flat": env._("Flat"),
            "valley": env._("Valley"),
            "daily": env._("Daily use"),
            "last_30": env._("Last 30 days"),
            "last_12": env._("Last 12 months"),
            "this_year": env._("This year"),
            "year_before": env._("A year before"),
            "on": env._("On"),
            "off": env._("Off"),
            "restored": env._("Supply restored."),
        }
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "prepaid_account",
                "account": account,
                "role": role,
                "meters": account.meter_ids.sorted(lambda m: (m.utility, m.name)),
                "meter_usage": meter_usage,
                "usage": usage,
                "usage_json": json.dumps(usage),
                "labels_json": json.dumps(labels),
                "ledger": ledger,
                "pager": pager,
                "topups": topups,
                "statements": statements,
                "notices": notices,
                "just_paid": just_paid,
                "bindings": account.portal_binding_ids.filtered(lambda b: b.state == "active")
                if role == "holder"
                else request.env["prepaid.portal.binding"],
                "invitations": request.env["prepaid.portal.invitation"]
                .sudo()
                .search([("account_id", "=", account.id), ("state", "=", "pending")])
                if role == "holder"
                else request.env["prepaid.portal.invitation"],
                "new_invitation": request.session.pop("prepaid_invitation_url", False),
            }
        )
        return request.render("prepaid_portal.portal_my_prepaid_account", values)

    @http.route("/my/prepaid/accounts/<int:account_id>/status", type="json", auth="user")
    def portal_my_prepaid_status(self, account_id, **kw):
        """What the account page polls after a payment: balance, level and each meter's supply."""
        account = self._prepaid_account(account_id)
        return {
            "balance": account.currency_id.format(account.balance),
            "level": account.level,
            "supply_cut": account.supply_cut,
            "meters": {str(m.id): m.supply or "unknown" for m in account.meter_ids},
        }

    @http.route("/my/prepaid/topups/<int:topup_id>/receipt", type="http", auth="user", website=True)
    def portal_my_prepaid_receipt(self, topup_id, **kw):
        topup = self._prepaid_topup(topup_id)
        if topup.state not in ("done", "reversed"):
            raise NotFound()
        return self._show_report(
            model=topup,
            report_type="pdf",
            report_ref="prepaid_billing.action_report_prepaid_topup",
            download=True,
        )

    @http.route("/my/prepaid/statements/<int:statement_id>/pdf", type="http", auth="user", website=True)
    def portal_my_prepaid_statement_pdf(self, statement_id, **kw):
        statement = self._prepaid_statement(statement_id)
        return self._show_report(
            model=statement,
            report_type="pdf",
            report_ref="prepaid_billing.action_report_prepaid_statement",
            download=True,
        )

    # ------------------------------------------------------------------ recharge

    def _prepaid_recharge_meters(self, account):
        return account.meter_ids.filtered(lambda m: m.billing_mode == "meter")

    @http.route(
        "/my/prepaid/accounts/<int:account_id>/recharge",
        type="http",
        auth="user",
        website=True,
        methods=["GET", "POST"],
    )
    def portal_my_prepaid_recharge(self, account_id, amount=None, meter_id=None, **kw):
        account = self._prepaid_account(account_id)
        company = account.company_id
        currency = account.currency_id
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "prepaid_recharge",
                "account": account,
                "presets": company._prepaid_portal_presets(),
                "min_amount": company.prepaid_portal_min_amount,
                "max_amount": company.prepaid_portal_max_amount,
                "recharge_meters": self._prepaid_recharge_meters(account),
                "error": False,
                "amount": amount,
            }
        )
        if request.httprequest.method != "POST":
            return request.render("prepaid_portal.portal_my_prepaid_recharge", values)
        value = _parse_amount(amount, currency)
        meter = request.env["prepaid.meter"]
        if meter_id:
            try:
                meter = self._prepaid_recharge_meters(account).filtered(lambda m: m.id == int(meter_id))
            except (ValueError, OverflowError):
                meter = request.env["prepaid.meter"]
            if not meter:
                values["error"] = request.env._("Choose one of your meters.")
        if value is None:
            values["error"] = request.env._("Enter an amount, such as 100 or 50.50.")
        elif not (
            Decimal(str(company.prepaid_portal_min_amount))
            <= value
            <= Decimal(str(company.prepaid_portal_max_amount))
        ):
            values["error"] = request.env._(
                "Recharge between %(low)s and %(high)s.",
                low=currency.format(company.prepaid_portal_min_amount),
                high=currency.format(company.prepaid_portal_max_amount),
            )
        elif account.state not in ("open", "suspended"):
            values["error"] = request.env._("This account is not open: it cannot be recharged.")
        if values["error"]:
            return request.render("prepaid_portal.portal_my_prepaid_recharge", values, status=400)
        try:
            topup = (
                request.env["prepaid.topup"]
                .with_company(company)
                ._prepaid_portal_create(account, float(value), meter or None)
            )
        except (UserError, ValidationError) as error:
            values["error"] = str(error)
            return request.render("prepaid_portal.portal_my_prepaid_recharge", values, status=400)
        return request.redirect(f"/my/prepaid/topups/{topup.id}/pay")

    @http.route("/my/prepaid/topups/<int:topup_id>/pay", type="http", auth="user", website=True)
    def portal_my_prepaid_pay(self, topup_id, **kw):
        """Odoo's payment form for an invoiced portal top-up, with every provider the company enabled."""
        topup = self._prepaid_topup(topup_id)
        account = topup.account_id
        if topup.state != "invoiced" or topup.channel != "portal":
            return request.redirect(f"/my/prepaid/accounts/{account.id}")
        invoice = topup.invoice_id
        values = self._prepare_portal_layout_values()
        values.update(
            self._get_common_page_view_values(
                invoices_data={
                    "partner": invoice.partner_id,
                    "company": invoice.company_id,
                    "total_amount": invoice.amount_residual,
                    "currency": invoice.currency_id,
                    "amount_residual": invoice.amount_residual,
                    "landing_route": f"/my/prepaid/accounts/{account.id}?topup={topup.id}",
                    "transaction_route": f"/my/prepaid/topups/{topup.id}/transaction",
                },
                access_token=None,
            )
        )
        values.update(
            {
                "page_name": "prepaid_recharge",
                "account": account,
                "topup": topup,
                "amount": invoice.amount_residual,
                "reference_prefix": None,
            }
        )
        return request.render("prepaid_portal.portal_my_prepaid_pay", values)

    @http.route("/my/prepaid/topups/<int:topup_id>/transaction", type="json", auth="user")
    def portal_my_prepaid_transaction(self, topup_id, access_token=None, **kwargs):
        """The transaction route of the payment form: a draft transaction on the top-up's invoice, for its
        whole residual amount (whatever amount the browser sent)."""
        try:
            topup = self._prepaid_topup(topup_id)
        except NotFound as error:
            raise ValidationError(request.env._("This top-up is not yours.")) from error
        invoice = topup.invoice_id
        if topup.state != "invoiced" or topup.channel != "portal" or invoice.payment_state != "not_paid":
            raise ValidationError(request.env._("This top-up is no longer waiting for a payment."))
        self._validate_transaction_kwargs(kwargs)
        kwargs.update(
            {
                "amount": invoice.amount_residual,
                "currency_id": invoice.currency_id.id,
                "partner_id": request.env.user.partner_id.id,
                "landing_route": f"/my/prepaid/accounts/{topup.account_id.id}?topup={topup.id}",
                "is_validation": False,
            }
        )
        kwargs.pop("csrf_token", None)
        tx_sudo = self._create_transaction(
            custom_create_values={"invoice_ids": [Command.set(invoice.ids)]}, **kwargs
        )
        return tx_sudo._get_processing_values()

    # ------------------------------------------------------------------ binding

    @http.route("/my/prepaid/bind", type="http", auth="user", website=True, methods=["GET", "POST"])
    def portal_my_prepaid_bind(self, account=None, code=None, token=None, **kw):
        """Bind an account by number and code, or by the QR label's signed link (opened after login)."""
        values = self._prepare_portal_layout_values()
        values.update({"page_name": "prepaid_bind", "account_number": account or "", "error": False})
        is_post = request.httprequest.method == "POST"
        if not is_post and not token:
            return request.render("prepaid_portal.portal_my_prepaid_bind", values)
        if not isinstance(account, str) or (is_post and not isinstance(code, str) and not token):
            values["error"] = request.env._("Enter the account number and the code.")
            return request.render("prepaid_portal.portal_my_prepaid_bind", values, status=400)
        if not is_post:
            # A QR link binds only once the user confirms on the page (a link must not act by itself).
            values["token"] = token if isinstance(token, str) and len(token) <= 128 else ""
            return request.render("prepaid_portal.portal_my_prepaid_bind", values)
        bound, error = request.env["prepaid.account"]._prepaid_portal_bind(
            request.env.user,
            account,
            code=code if isinstance(code, str) else None,
            token=token if isinstance(token, str) and token else None,
            ip=request.httprequest.remote_addr,
        )
        if error:
            values["error"] = error
            values["token"] = token or ""
            return request.render("prepaid_portal.portal_my_prepaid_bind", values, status=403)
        return request.redirect(f"/my/prepaid/accounts/{bound.id}")

    @http.route(
        "/my/prepaid/accounts/<int:account_id>/invite",
        type="http",
        auth="user",
        website=True,
        methods=["POST"],
    )
    def portal_my_prepaid_invite(self, account_id, **kw):
        account = self._prepaid_account(account_id)
        if account._prepaid_portal_role(request.env.user) != "holder":
            raise NotFound()
        invitation = request.env["prepaid.portal.invitation"]._invite(account, request.env.user)
        request.session["prepaid_invitation_url"] = (
            f"{account.get_base_url()}/my/prepaid/invitation/{invitation.token}"
        )
        return request.redirect(f"/my/prepaid/accounts/{account.id}#prepaid_sharing")

    @http.route(
        "/my/prepaid/accounts/<int:account_id>/revoke",
        type="http",
        auth="user",
        website=True,
        methods=["POST"],
    )
    def portal_my_prepaid_revoke(self, account_id, binding_id=None, invitation_id=None, **kw):
        account = self._prepaid_account(account_id)
        user = request.env.user
        if account._prepaid_portal_role(user) != "holder":
            raise NotFound()
        try:
            if binding_id:
                binding = account.portal_binding_ids.filtered(lambda b: b.id == int(binding_id))
                if not binding:
                    raise NotFound()
                binding._revoke(user)
            if invitation_id:
                invitation = (
                    request.env["prepaid.portal.invitation"]
                    .sudo()
                    .search([("id", "=", int(invitation_id)), ("account_id", "=", account.id)])
                )
                if not invitation:
                    raise NotFound()
                invitation._revoke()
        except (ValueError, OverflowError) as error:
            raise NotFound() from error
        return request.redirect(f"/my/prepaid/accounts/{account.id}#prepaid_sharing")

    @http.route(
        "/my/prepaid/invitation/<string:token>",
        type="http",
        auth="user",
        website=True,
        methods=["GET", "POST"],
    )
    def portal_my_prepaid_invitation(self, token, **kw):
        invitation = request.env["prepaid.portal.invitation"]._find_pending(token)
        values = self._prepare_portal_layout_values()
        values.update({"page_name": "prepaid_bind", "invitation": invitation, "token": token})
        if not invitation:
            return request.render("prepaid_portal.portal_my_prepaid_invitation", values, status=404)
        if request.httprequest.method != "POST":
            return request.render("prepaid_portal.portal_my_prepaid_invitation", values)
        binding = invitation._accept(request.env.user)
        return request.redirect(f"/my/prepaid/accounts/{binding.account_id.id}")
