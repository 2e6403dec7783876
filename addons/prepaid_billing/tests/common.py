from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo import Command
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.prepaid_metering.models.prepaid_meter_reading import FACTOR_PARAM
from odoo.tools import SQL

from prepaid_engine.types import Reading

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, in the middle of a monthly cycle


class BillingCommon(AccountTestInvoicingCommon):
    """A company with a chart of accounts (set up for prepaid by its first prepaid account), a building with a
    flat electricity tariff of 1.0000 per kWh and a tiered water tariff, units with open accounts and meters
    that are not behind a gateway (their readings are ingested directly). No demo data is used."""

    @classmethod
    def get_default_groups(cls):
        return super().get_default_groups() | cls.env.ref("prepaid_base.group_prepaid_manager")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        # The billing tests step whole kWh a quarter-hour (tens of kW, for round money) on 60 A single-phase
        # meters: readings are judged against 100 x the meters' capacity here. Plausibility itself is tested
        # with the factor at 1 (test_plausibility).
        cls.env["ir.config_parameter"].sudo().set_param(FACTOR_PARAM, "100")
        cls.company = cls.env.company
        cls.company.partner_id.tz = "Asia/Shanghai"
        cls.company.external_report_layout_id = cls.env.ref("web.external_layout_standard")
        cls.currency = cls.company.currency_id
        cls.cash_journal = cls.company_data["default_journal_cash"]
        Tariff = cls.env["prepaid.tariff"]
        cls.tariff_flat = Tariff.create(
            {"name": "Flat 1.00", "code": "T-FLAT", "utility": "electricity", "kind": "flat", "price": 1.0}
        )
        cls.tariff_water = Tariff.create(
            {
                "name": "Water tiers",
                "code": "T-WATER",
                "utility": "water",
                "kind": "tiered",
                "tier_ids": [
                    Command.create({"threshold": 0.0, "price": 3.0}),
                    Command.create({"threshold": 10.0, "price": 5.0}),
                ],
            }
        )
        Property = cls.env["prepaid.property"]
        cls.building = Property.create(
            {
                "name": "Block B",
                "code": "B",
                "kind": "building",
                "tz": "Asia/Shanghai",
                "settlement_cycle": "monthly",
                "settlement_day": 1,
                "electricity_tariff_id": cls.tariff_flat.id,
                "water_tariff_id": cls.tariff_water.id,
            }
        )
        cls.floor = Property.create(
            {"name": "B1", "code": "B1", "kind": "floor", "parent_id": cls.building.id}
        )
        cls.unit_1, cls.unit_2 = Property.create(
            [
                {"name": "B-101", "code": "B-101", "kind": "unit", "parent_id": cls.floor.id},
                {"name": "B-102", "code": "B-102", "kind": "unit", "parent_id": cls.floor.id},
            ]
        )
        cls.tenant_1, cls.tenant_2 = cls.env["res.partner"].create(
            [
                {"name": "Li Lei", "mobile": "+8613800001111", "email": "li.lei@example.com"},
                {"name": "Han Meimei", "mobile": "+8613800002222", "email": "han.meimei@example.com"},
            ]
        )
        Account = cls.env["prepaid.account"]
        cls.account_1 = Account.create(
            {"partner_id": cls.tenant_1.id, "unit_ids": [Command.set(cls.unit_1.ids)]}
        )
        cls.account_2 = Account.create(
            {"partner_id": cls.tenant_2.id, "unit_ids": [Command.set(cls.unit_2.ids)]}
        )
        (cls.account_1 | cls.account_2).action_open()
        # The company's first prepaid account turned prepaid on: its accounts, journals and product exist.
        cls.deposit = cls.company.prepaid_deposit_account_id
        cls.model_acrel = cls.env.ref("prepaid_metering.meter_model_acrel_ddsy1352")
        cls.model_water = cls.env.ref("prepaid_metering.meter_model_cjt188_water")
        cls.meter_1 = cls._create_meter(cls.unit_1, "E-101")
        cls.meter_2 = cls._create_meter(cls.unit_2, "E-102")

    @classmethod
    def _create_meter(cls, unit, name, model=None, **vals):
        model = model or cls.model_acrel
        return cls.env["prepaid.meter"].create(
            {"name": name, "utility": model.utility, "model_id": model.id, "unit_id": unit.id, **vals}
        )

    # ------------------------------------------------------------------ helpers

    def new_operator(self, login):
        """A cashier of the company with the prepaid user group only (no manager or accounting rights)."""
        return self.env["res.users"].create(
            {
                "name": "Cashier",
                "login": login,
                "company_id": self.company.id,
                "company_ids": [(6, 0, self.company.ids)],
                "groups_id": [(6, 0, [self.env.ref("prepaid_base.group_prepaid_user").id])],
            }
        )

    def ingest(self, meter, at, total, **registers):
        """Ingest one reading the way the poller does (settlement follows right after)."""
        values = {name: Decimal(str(value)) for name, value in registers.items()}
        reading = Reading(meter_key=str(meter.id), read_at=at, total=Decimal(str(total)), **values)
        return self.env["prepaid.meter.reading"]._ingest([reading], source="poll")

    def post(self, account, amount, key, kind="adjustment", **vals):
        return self.env["prepaid.account"]._post_ledger(
            [{"account_id": account.id, "kind": kind, "amount": amount, "idempotency_key": key, **vals}]
        )

    def topup(self, account, amount, journal=None, **vals):
        """A cashier top-up through the wizard; returns the prepaid.topup."""
        wizard = self.env["prepaid.topup.wizard"].create(
            {
                "account_id": account.id,
                "amount": amount,
                "journal_id": (journal or self.cash_journal).id,
                "print_receipt": False,
                **vals,
            }
        )
        wizard.action_confirm()
        return self.env["prepaid.topup"].search([("account_id", "=", account.id)], order="id desc", limit=1)

    def ledger_sum(self, account):
        self.env.flush_all()
        return self.env.execute_query(
            SQL("SELECT COALESCE(SUM(amount), 0) FROM prepaid_ledger WHERE account_id = %s", account.id)
        )[0][0]

    def deposit_balance(self, partner):
        """What the tenant holds on the deposit account (credit balance, positive), posted entries only."""
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", self.deposit.id),
                ("partner_id", "=", partner.commercial_partner_id.id),
                ("parent_state", "=", "posted"),
            ]
        )
        return -sum(lines.mapped("balance"))

    def post_summaries(self, until=None):
        return self.env["prepaid.summary"]._post_company_summaries(
            self.company, until=until or datetime.now().replace(microsecond=0) + timedelta(days=400)
        )

    def assertLedgerMatchesAccounting(self, *accounts):
        """The invariant: for each tenant, the ledger balance equals the partner's balance on the deposit
        account (once the summary entries ran), and the cached balance equals the ledger sum."""
        self.post_summaries()
        for account in accounts:
            account.invalidate_recordset()
            ledger = float(self.ledger_sum(account))
            self.assertAlmostEqual(account.balance, ledger, places=2, msg=f"{account.name}: cache vs ledger")
            self.assertAlmostEqual(
                self.deposit_balance(account.partner_id), ledger, places=2, msg=f"{account.name}: accounting"
            )
