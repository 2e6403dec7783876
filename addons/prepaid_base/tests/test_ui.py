import importlib.util
import unittest

from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged

# Odoo drives Chrome through websocket-client (requirements-test.txt); without it HttpCase browser tests are
# skipped with a WARNING, which the suite's test command counts as a failure: skip quietly instead.
needs_browser = unittest.skipUnless(
    importlib.util.find_spec("websocket"), "websocket-client is not installed: browser tests skipped"
)

CLICK_EVERYWHERE = (
    "odoo.loader.modules.get('@web/webclient/clickbot/clickbot_loader')"
    ".startClickEverywhere('prepaid_base.prepaid_root_menu');"
)


@needs_browser
@tagged("post_install", "-at_install")
class TestPrepaidMenus(HttpCase):
    """Every menu, view, filter and group-by of the Prepaid app opens in the web client without error, for a
    manager and for an operator. The clickbot walks the whole Prepaid root menu, so the menus of every suite
    module installed beside this one (metering, billing) are clicked too: one walk for the whole app."""

    allow_end_on_form = True

    def _click_everywhere(self, login):
        self.browser_js(
            "/odoo",
            CLICK_EVERYWHERE,
            "odoo.isReady === true",
            login=login,
            timeout=900,
            success_signal="clickbot test succeeded",
        )

    def test_click_every_prepaid_menu_as_manager(self):
        self.env.ref("base.user_admin").tour_enabled = False
        self._click_everywhere("admin")

    def test_click_every_prepaid_menu_as_operator(self):
        operator = new_test_user(self.env, login="pp_ui_operator", groups="prepaid_base.group_prepaid_user")
        operator.tour_enabled = False
        self._click_everywhere(operator.login)


@needs_browser
@tagged("post_install", "-at_install")
class TestPrepaidFormsTour(HttpCase):
    """A manager adds a floor from a building's form, reads an account's balance and ledger, changes a level,
    suspends the account and opens a time-of-use tariff, all in the web client."""

    def test_forms_tour(self):
        self.env.ref("base.user_admin").tour_enabled = False
        building = self.env["prepaid.property"].create({"name": "Tour Building", "kind": "building"})
        site_tz = building.tz
        partner = self.env["res.partner"].create({"name": "Tour Tenant"})
        account = self.env["prepaid.account"].create({"partner_id": partner.id})
        account.action_open()
        self.env["prepaid.account"]._post_ledger(
            [{"account_id": account.id, "kind": "topup", "amount": 42.5, "idempotency_key": "tour:topup"}]
        )
        self.env["prepaid.tariff"].create(
            {
                "name": "Tour TOU",
                "utility": "electricity",
                "kind": "tou",
                "period_ids": [
                    Command.create({"start": 0.0, "band": "valley"}),
                    Command.create({"start": 8.0, "band": "peak"}),
                ],
            }
        )

        self.start_tour("/odoo", "prepaid_base_forms_tour", login="admin")

        floor = building.child_ids
        self.assertEqual((floor.name, floor.kind), ("Tour Floor", "floor"))
        self.assertFalse(floor.tz)
        self.assertEqual(floor.effective_tz, site_tz or "UTC")
        self.assertEqual(account.warn_level_1, 60.0)
        self.assertEqual(account.state, "suspended")
        self.assertEqual(account.balance, 42.5)
