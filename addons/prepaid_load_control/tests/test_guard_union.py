from odoo.addons.prepaid_billing.tests.common import BillingCommon
from odoo.exceptions import AccessError
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestGuardUnion(BillingCommon):
    """Every module's protected and manager-only fields hold together, whatever the order the modules'
    extensions load in: metering's, billing's and load control's on the meter, base's, billing's and load
    control's on the property (a later extension once replaced billing's temporary-supply fields)."""

    def test_protected_fields_of_every_extension_are_refused_over_rpc_like_writes(self):
        context = {"prepaid_internal": True, "active_test": False}
        for user in (self.new_operator("guard_union_op"), self.env.user):
            meter = self.meter_1.with_user(user).with_context(**context)
            for fname, value in (
                ("supply", "off"),  # metering
                ("temporary_supply", "kept_on"),  # billing
                ("temporary_used", -5.0),
                ("reused_purchase_count", 99),
                ("load_state", "locked"),  # load control
            ):
                with self.subTest(user=user.login, field=fname), self.assertRaises(AccessError):
                    meter.write({fname: value})
        operator = self.new_operator("guard_union_op2")
        for fname, value in (
            ("is_common", True),  # billing, on the meter
        ):
            with self.subTest(field=fname), self.assertRaises(AccessError):
                self.meter_1.with_user(operator).write({fname: value})
        for fname in ("anomaly_manager_id", "load_manager_id"):  # billing's and load control's, on properties
            with self.subTest(field=fname), self.assertRaises(AccessError):
                self.building.with_user(operator).write({fname: operator.id})
        self.assertEqual(self.meter_1.temporary_supply, "none")
