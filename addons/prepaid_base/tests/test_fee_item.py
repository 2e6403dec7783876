from odoo import Command
from odoo.tests import tagged
from odoo.tools import mute_logger
from psycopg2.errors import CheckViolation

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestFeeItem(PrepaidCommon):
    def test_fee_applies_to_units_below_its_properties(self):
        fee = self.env["prepaid.fee.item"].create(
            {
                "name": "Property fee",
                "kind": "property_fee",
                "calculation": "per_area",
                "unit_price": 2.5,
                "property_ids": [Command.set([self.building_a.id, self.unit_b101.id])],
            }
        )
        self.assertEqual(fee._get_units(), self.unit_a101 | self.unit_a102 | self.unit_b101)
        self.assertEqual(fee.currency_id, self.currency)

    @mute_logger("odoo.sql_db")
    def test_negative_amount_is_refused(self):
        with self.assertRaises(CheckViolation):
            self.env["prepaid.fee.item"].create({"name": "Bad", "amount": -5.0})
            self.env.flush_all()
