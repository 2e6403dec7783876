from odoo.tests import tagged

from .common import BillingCommon

TICKET = "prepaid_billing.action_report_prepaid_topup_ticket"
A4 = "prepaid_billing.action_report_prepaid_topup"


@tagged("post_install", "-at_install")
class TestReceipt(BillingCommon):
    """The cashier's receipt: an 80 mm ticket or an A4 page, with the company header, downloaded at once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write(
            {
                "name": "Receipt Test Property Services",
                "street": "88 Century Avenue",
                "city": "Shanghai",
                "vat": "91310000MA1FL0001X",
                "phone": "+86 21 5555 0100",
            }
        )

    def render(self, report, topup):
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(report, topup.ids)
        return html.decode()

    def test_both_layouts_show_the_company_header_and_the_amount(self):
        topup = self.topup(self.account_1, 123.45, memo="June")
        for report in (TICKET, A4):
            with self.subTest(report=report):
                html = self.render(report, topup)
                for text in (
                    "Receipt Test Property Services",
                    "88 Century Avenue",
                    "91310000MA1FL0001X",
                    "+86 21 5555 0100",
                    topup.name,
                    "Li Lei",
                    "June",
                    "123.45",
                ):
                    self.assertIn(text, html)

    def test_a_cashier_without_accounting_rights_prints_the_receipt(self):
        """The cashier is an operator without access to journal entries: the receipt still names the invoice
        (found when a cashier's first top-up in the running product failed to print)."""
        cashier = self.new_operator("receipt_cashier")
        topup = self.topup(self.account_1, 20.0)
        invoice = topup.invoice_id.name
        for report in (TICKET, A4):
            with self.subTest(report=report):
                self.env.invalidate_all()  # a request of its own: nothing read by the manager is cached
                html, _kind = (
                    self.env["ir.actions.report"].with_user(cashier)._render_qweb_html(report, topup.ids)
                )
                self.assertIn(invoice, html.decode())

    def test_the_receipt_downloads_without_the_document_layout_dialog(self):
        """Odoo offers an administrator of a company without a document layout to configure one before the
        first report (and the report then waits behind that dialog): the receipt does not ask."""
        self.company.external_report_layout_id = False
        topup = self.topup(self.account_1, 10.0)
        for action in (
            topup.sudo().action_print_receipt(),
            topup.sudo().action_print_ticket(),
            topup.sudo().action_print_a4(),
        ):
            self.assertEqual(action["type"], "ir.actions.report")
            self.assertTrue(action["close_on_report_download"])

    def test_the_company_chooses_the_default_layout_and_the_cashier_either(self):
        topup = self.topup(self.account_1, 10.0)
        self.assertEqual(self.company.prepaid_receipt_layout, "ticket")
        self.assertEqual(
            topup.action_print_receipt()["report_name"], "prepaid_billing.report_prepaid_topup_ticket"
        )
        self.company.prepaid_receipt_layout = "a4"
        self.assertEqual(topup.action_print_receipt()["report_name"], "prepaid_billing.report_prepaid_topup")
        self.assertEqual(
            topup.action_print_ticket()["report_name"], "prepaid_billing.report_prepaid_topup_ticket"
        )
        paper = self.env.ref(TICKET).paperformat_id
        self.assertRecordValues(
            paper,
            [{"format": "custom", "page_width": 80, "margin_left": 0, "margin_right": 0, "margin_top": 0}],
        )
        self.assertEqual(self.env.ref(A4).paperformat_id.format, "A4")

    def test_the_receipt_speaks_the_tenant_language(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["prepaid_billing"], ["zh_CN"], overwrite=True)
        self.tenant_1.lang = "zh_CN"
        topup = self.topup(self.account_1, 10.0)
        for report in (TICKET, A4):
            with self.subTest(report=report):
                html = self.render(report, topup)
                self.assertIn("充值收据", html)
                self.assertIn("充值后余额", html)
