from decimal import Decimal

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestTariff(PrepaidCommon):
    def _tou(self, starts):
        return self.env["prepaid.tariff"].create(
            {
                "name": "TOU test",
                "utility": "electricity",
                "kind": "tou",
                "period_ids": [Command.create({"start": start, "band": "flat"}) for start in starts],
            }
        )

    def _tiered(self, tiers):
        return self.env["prepaid.tariff"].create(
            {
                "name": "Tiered test",
                "utility": "water",
                "kind": "tiered",
                "tier_ids": [Command.create({"threshold": t, "price": p}) for t, p in tiers],
            }
        )

    def test_unit_follows_utility(self):
        self.assertEqual(self.tariff_flat.unit, "kwh")
        self.assertEqual(self.tariff_water.unit, "m3")

    def test_eight_periods_are_numbered_by_start_time(self):
        tariff = self._tou([22.0, 0.0, 8.0, 10.0, 12.0, 14.0, 19.0, 21.0])
        self.assertEqual(
            [(p.sequence, p.start) for p in tariff.period_ids.sorted("start")],
            [(1, 0.0), (2, 8.0), (3, 10.0), (4, 12.0), (5, 14.0), (6, 19.0), (7, 21.0), (8, 22.0)],
        )

    def test_a_ninth_period_is_refused(self):
        with self.assertRaises(ValidationError):
            self._tou([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
        tariff = self._tou([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
        with self.assertRaises(ValidationError):
            self.env["prepaid.tariff.period"].create({"tariff_id": tariff.id, "start": 9.0, "band": "peak"})

    def test_first_period_must_start_at_midnight(self):
        with self.assertRaises(ValidationError):
            self._tou([6.0, 18.0])

    def test_period_starts_must_be_unique_and_within_the_day(self):
        with self.assertRaises(ValidationError):
            self._tou([0.0, 8.0, 8.0])
        with self.assertRaises(ValidationError):
            self._tou([0.0, 24.0])
        tariff = self._tou([0.0, 8.0])
        with self.assertRaises(ValidationError):
            tariff.period_ids.filtered(lambda p: p.start == 8.0).start = 0.0

    def test_time_of_use_needs_periods(self):
        with self.assertRaises(ValidationError):
            self._tou([])

    def test_tiers_start_at_zero_and_increase(self):
        tariff = self._tiered([(30.0, 5.0), (0.0, 3.5), (15.0, 4.2)])
        self.assertEqual(tariff.tier_ids.sorted("threshold").mapped("threshold"), [0.0, 15.0, 30.0])
        with self.assertRaises(ValidationError):
            self._tiered([(5.0, 3.5), (15.0, 4.2)])
        with self.assertRaises(ValidationError):
            self._tiered([(0.0, 3.5), (15.0, 4.2), (15.0, 5.0)])
        with self.assertRaises(ValidationError):
            self._tiered([])
        with self.assertRaises(ValidationError):
            self._tiered([(0.0, -1.0)])

    def test_negative_prices_are_refused(self):
        with self.assertRaises(ValidationError):
            self.tariff_flat.price = -0.01
        with self.assertRaises(ValidationError):
            self.tariff_tou.price_peak = -1.0

    def test_prices_keep_four_decimals(self):
        self.tariff_flat.price = 0.61749
        self.assertEqual(self._db_value(self.tariff_flat, "price"), 0.6175)

    def test_each_refusal_of_the_engine_is_said_in_words(self):
        """One message per ConfigError kind of the engine's tariff validation the constraint maps."""
        cases = [
            (lambda: self._tou([]), "Time-of-use tariff TOU test needs at least one daily period."),
            (
                lambda: self._tou([float(h) for h in range(9)]),
                "Tariff TOU test has 9 daily periods; a meter holds at most 8.",
            ),
            (
                lambda: self._tou([0.0, 24.0]),
                "Daily periods of tariff TOU test must start between 00:00 and 23:59.",
            ),
            (
                lambda: self._tou([6.0, 18.0]),
                "The first daily period of tariff TOU test must start at 00:00.",
            ),
            (
                lambda: self._tou([0.0, 8.0, 8.0]),
                "Two daily periods of tariff TOU test start at the same time.",
            ),
            (lambda: self._tiered([]), "Tiered tariff Tiered test needs at least one tier."),
            (lambda: self._tiered([(5.0, 3.5)]), "The first tier of tariff Tiered test must start at 0."),
            (
                lambda: self._tiered([(0.0, 3.5), (15.0, 4.2), (15.0, 5.0)]),
                "Tier thresholds of tariff Tiered test must be strictly increasing.",
            ),
            (lambda: self._tiered([(0.0, -1.0)]), "Tier prices of tariff Tiered test cannot be negative."),
            (
                lambda: self.tariff_flat.write({"price_valley": -2.0}),
                "Prices of tariff Flat 0.617 cannot be negative.",
            ),
        ]
        for make, message in cases:
            with self.subTest(message=message), self.assertRaises(ValidationError) as caught:
                make()
            self.assertEqual(caught.exception.args[0], message)

    def test_a_tariff_is_the_engines_tariff(self):
        engine = self.tariff_tou._prepare_engine_tariff("Asia/Shanghai", Decimal("0.01"))
        self.assertEqual(
            [(start.isoformat(), str(band)) for start, band in engine.periods],
            [("00:00:00", "valley"), ("08:00:00", "peak"), ("22:00:00", "valley")],
        )
        self.assertEqual(engine.band_prices.peak, Decimal("1.09"))
        self.assertEqual(engine.tz, "Asia/Shanghai")
