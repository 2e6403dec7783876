from odoo.tests import HttpCase, new_test_user, tagged

CLICK_EVERYWHERE = (
    "odoo.loader.modules.get('@web/webclient/clickbot/clickbot_loader')"
    ".startClickEverywhere('prepaid_base.prepaid_root_menu');"
)


@tagged("post_install", "-at_install")
class TestPrepaidMenus(HttpCase):
    """Every menu, view, filter and group-by of the Prepaid app opens in the web client without error."""

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
