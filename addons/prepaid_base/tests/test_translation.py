from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestTrackedChoicesInTheReadersLanguage(TransactionCase):
    """A tracked state changed by someone working in English (a cron) reads in Chinese for a Chinese
    reader: Odoo keeps the label the writer saw; the suite reads it back in the reader's language."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("zh_CN")
        cls.env["ir.module.module"].search([("name", "=", "prepaid_base")])._load_module_terms(
            ["prepaid_base"], ["zh_CN"], overwrite=True
        )

    def test_a_state_changed_in_english_reads_in_chinese(self):
        partner = self.env["res.partner"].create({"name": "Tracked tenant"})
        account = self.env["prepaid.account"].with_context(lang="en_US").create({"partner_id": partner.id})
        self.env.cr.precommit.run()  # (changes in the transaction that created a record are not tracked)
        account.with_context(lang="en_US").action_open()
        self.env.cr.precommit.run()  # tracking values are written when the transaction commits
        tracking = self.env["mail.tracking.value"].search(
            [("mail_message_id.res_id", "=", account.id), ("field_id.name", "=", "state")]
        )
        self.assertEqual((tracking.old_value_char, tracking.new_value_char), ("Draft", "Open"))
        [chinese] = tracking.with_context(lang="zh_CN")._tracking_value_format()
        self.assertEqual((chinese["oldValue"]["value"], chinese["newValue"]["value"]), ("草稿", "开通"))
        [english] = tracking.with_context(lang="en_US")._tracking_value_format()
        self.assertEqual((english["oldValue"]["value"], english["newValue"]["value"]), ("Draft", "Open"))
