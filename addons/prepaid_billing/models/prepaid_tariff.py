from datetime import time
from decimal import Decimal

from odoo import models

from prepaid_engine.rating import BandPrices, Tariff, TariffKind
from prepaid_engine.types import Utility

BAND_PRICE_FIELDS = (
    ("sharp", "price_sharp"),
    ("peak", "price_peak"),
    ("flat", "price_flat"),
    ("valley", "price_valley"),
)


def price(value):
    """A stored price (4 decimals) as the exact Decimal it stands for."""
    return Decimal(f"{value or 0.0:.4f}")


def quantity(value):
    """A stored quantity (3 decimals) as the exact Decimal it stands for."""
    return Decimal(f"{value or 0.0:.3f}")


def local_time(hours):
    """A float hour of the day (8.5) as a wall-clock time (08:30)."""
    minutes = min(round((hours or 0.0) * 60), 24 * 60 - 1)
    return time(minutes // 60, minutes % 60)


class PrepaidTariff(models.Model):
    _inherit = "prepaid.tariff"

    def _prepare_engine_tariff(self, tz, rounding):
        """The engine's :class:`~prepaid_engine.rating.Tariff` of this record, its periods read in ``tz`` and
        its charges rounded to ``rounding`` (the ledger currency's quantum). The addon rates nothing
        itself."""
        self.ensure_one()
        kind = TariffKind(self.kind)
        values = {
            "code": self.code or f"tariff-{self.id}",
            "kind": kind,
            "utility": Utility(self.utility),
            "currency": self.currency_id.name or "CNY",
            "free_allowance": quantity(self.free_allowance),
            "rounding": rounding,
            "tz": tz or "UTC",
        }
        if kind is TariffKind.FLAT:
            values["price"] = price(self.price)
        elif kind is TariffKind.TOU:
            periods = self.period_ids.sorted(lambda p: (p.start, p.id))
            used = set(periods.mapped("band"))
            # A band no period uses and without a price is left unpriced: consumption a meter reports in it is
            # a configuration error the settlement reports, not free energy.
            values["band_prices"] = BandPrices(
                **{
                    band: price(self[fname]) if (band in used or self[fname]) else None
                    for band, fname in BAND_PRICE_FIELDS
                }
            )
            values["periods"] = tuple((local_time(p.start), p.band) for p in periods)
        else:
            values["tiers"] = tuple(
                (quantity(tier.threshold), price(tier.price)) for tier in self.tier_ids.sorted("threshold")
            )
        return Tariff(**values)
