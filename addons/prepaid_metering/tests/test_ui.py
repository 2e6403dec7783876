from odoo.tests import HttpCase, new_test_user, tagged

CLICK_EVERYWHERE = (
    "odoo.loader.modules.get('@web/webclient/clickbot/clickbot_loader')"
    ".startClickEverywhere('prepaid_base.prepaid_root_menu');"
)


@tagged("post_install", "-at_install")
class TestMeteringMenus(HttpCase):
    """Every menu of the Prepaid app, with this module's Metering menus (room status board, gateways, meters,
    readings graph and pivot, commands, log, platforms, models, site map import), its views, filters and
    group-bys open in the web client without error, for a manager and for an operator."""

    allow_end_on_form = True

    def _click_everywhere(self, login):
        self.browser_js(
            "/odoo",
            CLICK_EVERYWHERE,
            "odoo.isReady === true",
            login=login,
            timeout=1200,
            success_signal="clickbot test succeeded",
        )

    def test_click_every_prepaid_menu_as_manager(self):
        self.env.ref("base.user_admin").tour_enabled = False
        self._click_everywhere("admin")

    def test_click_every_prepaid_menu_as_operator(self):
        operator = new_test_user(self.env, login="pm_ui_operator", groups="prepaid_base.group_prepaid_user")
        operator.tour_enabled = False
        self._click_everywhere(operator.login)
