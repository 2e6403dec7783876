from pathlib import Path

import polib
from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import TranslationModuleReader


@tagged("post_install", "-at_install")
class TestEveryScreenIsTranslated(TransactionCase):
    """Every term the suite's installed modules show (field labels, selections, views, menus, mail
    templates, messages in code) is in the module's template and has a Chinese translation: a string
    added without its translation fails here, not in front of a Chinese-speaking manager."""

    def _suite_modules(self):
        return (
            self.env["ir.module.module"]
            .search([("name", "=like", "prepaid\\_%"), ("state", "=", "installed")])
            .mapped("name")
        )

    def test_every_term_has_a_chinese_translation(self):
        modules = self._suite_modules()
        self.assertIn("prepaid_base", modules)
        for module in modules:
            with self.subTest(module=module):
                i18n = Path(get_module_path(module)) / "i18n"
                template = {entry.msgid for entry in polib.pofile(str(i18n / f"{module}.pot"))}
                chinese = {
                    entry.msgid: entry.msgstr
                    for entry in polib.pofile(str(i18n / "zh_CN.po"))
                    if not entry.obsolete and "fuzzy" not in entry.flags
                }
                reader = TranslationModuleReader(self.env.cr, modules=[module])
                terms = {
                    source
                    for term_module, _kind, _name, _res_id, source, _value, _comments in reader
                    if term_module == module
                }
                self.assertTrue(terms)
                self.assertEqual(
                    sorted(terms - template), [], f"terms of {module} missing from i18n/{module}.pot"
                )
                self.assertEqual(
                    sorted(term for term in terms if not chinese.get(term)),
                    [],
                    f"terms of {module} without a translation in i18n/zh_CN.po",
                )
