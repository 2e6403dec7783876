from datetime import time
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_engine.errors import ConfigError
from prepaid_engine.rating import BandPrices, Tariff, TariffKind, period_start
from prepaid_engine.rating.numbers import to_price
from prepaid_engine.types import Utility

UTILITY_SELECTION = [("electricity", "Electricity"), ("water", "Water")]
# The metering unit of each utility (the engine's quantities are in these units).
UTILITY_UNIT = {"electricity": "kwh", "water": "m3"}
UNIT_SELECTION = [("kwh", "kWh"), ("m3", "m³")]
BAND_SELECTION = [("sharp", "Sharp"), ("peak", "Peak"), ("flat", "Flat"), ("valley", "Valley")]
PRICE_DIGITS = (16, 4)
QUANTITY_DIGITS = (16, 3)
# The price fields a tariff kind needs, checked to be >= 0 whatever the kind.
PRICE_FIELDS = ("price", "price_sharp", "price_peak", "price_flat", "price_valley")
BAND_PRICE_FIELDS = (
    ("sharp", "price_sharp"),
    ("peak", "price_peak"),
    ("flat", "price_flat"),
    ("valley", "price_valley"),
)
# A tariff is validated with this money quantum; settlement rates it with the currency's own.
VALIDATION_ROUNDING = Decimal("0.01")


def price(value):
    """A stored price (4 decimals) as the exact Decimal it stands for."""
    return Decimal(f"{value or 0.0:.4f}")


def quantity(value):
    """A stored quantity (3 decimals) as the exact Decimal it stands for."""
    return Decimal(f"{value or 0.0:.3f}")


def local_time(hours):
    """A float hour of the day (8.5) as a wall-clock time (08:30), clamped to the day."""
    minutes = min(round((hours or 0.0) * 60), 24 * 60 - 1)
    return time(minutes // 60, minutes % 60)


class PrepaidTariff(models.Model):
    """A price list for one utility: flat, time-of-use (bands over up to 8 daily periods) or tiered.

    Records only: the pricing maths and the rules of a valid tariff live in ``prepaid_engine`` (rating).
    :meth:`_prepare_engine_tariff` turns a record into the engine's :class:`~prepaid_engine.rating.Tariff`;
    the constraint builds it, so a saved tariff is always one the engine accepts, and says the engine's
    refusal (its ``ConfigError`` kind and numbers) in the user's language.
    """

    _name = "prepaid.tariff"
    _description = "Prepaid Tariff"
    _inherit = ["mail.thread"]
    _order = "utility, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(tracking=True, help="Short reference, unique per company (used in imports).")
    active = fields.Boolean(default=True, tracking=True)
    utility = fields.Selection(UTILITY_SELECTION, required=True, default="electricity", tracking=True)
    kind = fields.Selection(
        [("flat", "Flat Rate"), ("tou", "Time of Use"), ("tiered", "Tiered")],
        required=True,
        default="flat",
        tracking=True,
        help="Flat: one price. Time of use: a price per band (sharp, peak, flat, valley) and daily periods "
        "mapping hours to bands. Tiered: prices by cumulative quantity over the settlement cycle.",
    )
    unit = fields.Selection(UNIT_SELECTION, string="Unit of Measure", compute="_compute_unit", store=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
        tracking=True,
        help="Currency the prices are expressed in.",
    )
    price = fields.Float(
        digits=PRICE_DIGITS, tracking=True, help="Price per unit (kWh or m³) of a flat tariff."
    )
    price_sharp = fields.Float(string="Sharp Price", digits=PRICE_DIGITS, tracking=True)
    price_peak = fields.Float(string="Peak Price", digits=PRICE_DIGITS, tracking=True)
    price_flat = fields.Float(string="Flat Price", digits=PRICE_DIGITS, tracking=True)
    price_valley = fields.Float(string="Valley Price", digits=PRICE_DIGITS, tracking=True)
    period_ids = fields.One2many(
        "prepaid.tariff.period",
        "tariff_id",
        string="Daily Periods",
        copy=True,
        help="Up to 8 periods a day; each runs from its start to the next period's start. "
        "The first starts at 00:00.",
    )
    tier_ids = fields.One2many(
        "prepaid.tariff.tier",
        "tariff_id",
        string="Tiers",
        copy=True,
        help="Each tier applies from its threshold (cumulative quantity in the settlement cycle) "
        "up to the next tier's threshold. The first tier starts at 0.",
    )
    free_allowance = fields.Float(
        digits=QUANTITY_DIGITS,
        tracking=True,
        help="Quantity per settlement cycle that is not charged.",
    )
    note = fields.Html()

    _sql_constraints = [
        ("code_company_uniq", "UNIQUE(code, company_id)", "A tariff code must be unique per company."),
        ("free_allowance_positive", "CHECK(free_allowance >= 0)", "The free allowance cannot be negative."),
    ]

    @api.depends("utility")
    def _compute_unit(self):
        for tariff in self:
            tariff.unit = UTILITY_UNIT.get(tariff.utility)

    @api.constrains("kind", "period_ids", "tier_ids", "currency_id", *PRICE_FIELDS)
    def _check_engine_rules(self):
        """Every price is one the engine takes, and the engine builds the tariff (see the class notes)."""
        for tariff in self:
            try:
                for fname in PRICE_FIELDS:
                    to_price(price(tariff[fname]), fname)
                tariff._prepare_engine_tariff("UTC", VALIDATION_ROUNDING)
            except ConfigError as exc:
                raise ValidationError(tariff._engine_error_message(exc)) from exc

    def _engine_error_message(self, error):
        """The engine's refusal of this tariff (a ConfigError), in the user's language."""
        self.ensure_one()
        _ = self.env._
        name = self.display_name
        params = error.params
        messages = {
            "tariff.periods_empty": lambda: _(
                "Time-of-use tariff %(tariff)s needs at least one daily period.", tariff=name
            ),
            "tariff.periods_too_many": lambda: _(
                "Tariff %(tariff)s has %(count)s daily periods; a meter holds at most %(max)s.",
                tariff=name,
                count=params["count"],
                max=params["max"],
            ),
            "tariff.period_start_outside_day": lambda: _(
                "Daily periods of tariff %(tariff)s must start between 00:00 and 23:59.", tariff=name
            ),
            "tariff.period_first_not_midnight": lambda: _(
                "The first daily period of tariff %(tariff)s must start at 00:00.", tariff=name
            ),
            # Periods are handed over sorted by start: out of order can only mean two equal starts.
            "tariff.period_starts_not_increasing": lambda: _(
                "Two daily periods of tariff %(tariff)s start at the same time.", tariff=name
            ),
            "tariff.tiers_empty": lambda: _("Tiered tariff %(tariff)s needs at least one tier.", tariff=name),
            "tariff.tier_first_not_zero": lambda: _(
                "The first tier of tariff %(tariff)s must start at 0.", tariff=name
            ),
            # Tiers are handed over sorted by threshold: not increasing means two equal thresholds.
            "tariff.tier_thresholds_not_increasing": lambda: _(
                "Tier thresholds of tariff %(tariff)s must be strictly increasing.", tariff=name
            ),
        }
        if error.kind == "number.negative":
            if params.get("what") == "tier price":
                return _("Tier prices of tariff %(tariff)s cannot be negative.", tariff=name)
            return _("Prices of tariff %(tariff)s cannot be negative.", tariff=name)
        message = messages.get(error.kind)
        if message is not None:
            return message()
        return _("Tariff %(tariff)s is not valid: %(error)s", tariff=name, error=str(error))

    def _prepare_engine_tariff(self, tz, rounding):
        """The engine's :class:`~prepaid_engine.rating.Tariff` of this record, its periods read in ``tz`` and
        its charges rounded to ``rounding`` (the ledger currency's quantum). Raises the engine's
        :class:`~prepaid_engine.errors.ConfigError` for a tariff it does not accept. The addon rates
        nothing itself."""
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
            values["periods"] = tuple((period_start(round(p.start * 60)), p.band) for p in periods)
        else:
            values["tiers"] = tuple(
                (quantity(tier.threshold), price(tier.price)) for tier in self.tier_ids.sorted("threshold")
            )
        return Tariff(**values)
