from odoo import api, fields, models
from odoo.exceptions import ValidationError

UTILITY_SELECTION = [("electricity", "Electricity"), ("water", "Water")]
# The metering unit of each utility (the engine's quantities are in these units).
UTILITY_UNIT = {"electricity": "kwh", "water": "m3"}
UNIT_SELECTION = [("kwh", "kWh"), ("m3", "m³")]
BAND_SELECTION = [("sharp", "Sharp"), ("peak", "Peak"), ("flat", "Flat"), ("valley", "Valley")]
# A meter holds at most this many daily time-of-use periods (DL/T 645 day table).
MAX_TOU_PERIODS = 8
PRICE_DIGITS = (16, 4)
QUANTITY_DIGITS = (16, 3)
# The price fields a tariff kind needs, checked to be >= 0 whatever the kind.
PRICE_FIELDS = ("price", "price_sharp", "price_peak", "price_flat", "price_valley")


class PrepaidTariff(models.Model):
    """A price list for one utility: flat, time-of-use (bands over up to 8 daily periods) or tiered.

    Records only: the pricing maths lives in ``prepaid_engine`` (rating). Billing turns these records into
    the engine's dataclasses; the constraints here mirror the engine's validation so a saved tariff is
    always one the engine accepts.
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
    unit = fields.Selection(UNIT_SELECTION, compute="_compute_unit", store=True)
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

    @api.constrains(*PRICE_FIELDS)
    def _check_prices(self):
        for tariff in self:
            if any(tariff[fname] < 0 for fname in PRICE_FIELDS):
                raise ValidationError(
                    self.env._("Prices of tariff %(tariff)s cannot be negative.", tariff=tariff.display_name)
                )

    @api.constrains("kind", "period_ids")
    def _check_periods(self):
        for tariff in self.filtered(lambda t: t.kind == "tou"):
            periods = tariff.period_ids.sorted("start")
            starts = periods.mapped("start")
            if not periods:
                raise ValidationError(
                    self.env._(
                        "Time-of-use tariff %(tariff)s needs at least one daily period.",
                        tariff=tariff.display_name,
                    )
                )
            if len(periods) > MAX_TOU_PERIODS:
                raise ValidationError(
                    self.env._(
                        "Tariff %(tariff)s has %(count)s daily periods; a meter holds at most %(max)s.",
                        tariff=tariff.display_name,
                        count=len(periods),
                        max=MAX_TOU_PERIODS,
                    )
                )
            if any(start < 0 or start >= 24 for start in starts):
                raise ValidationError(
                    self.env._(
                        "Daily periods of tariff %(tariff)s must start between 00:00 and 23:59.",
                        tariff=tariff.display_name,
                    )
                )
            if starts[0] != 0:
                raise ValidationError(
                    self.env._(
                        "The first daily period of tariff %(tariff)s must start at 00:00.",
                        tariff=tariff.display_name,
                    )
                )
            if len(set(starts)) != len(starts):
                raise ValidationError(
                    self.env._(
                        "Two daily periods of tariff %(tariff)s start at the same time.",
                        tariff=tariff.display_name,
                    )
                )

    @api.constrains("kind", "tier_ids")
    def _check_tiers(self):
        for tariff in self.filtered(lambda t: t.kind == "tiered"):
            tiers = tariff.tier_ids.sorted("threshold")
            thresholds = tiers.mapped("threshold")
            if not tiers:
                raise ValidationError(
                    self.env._(
                        "Tiered tariff %(tariff)s needs at least one tier.", tariff=tariff.display_name
                    )
                )
            if thresholds[0] != 0:
                raise ValidationError(
                    self.env._(
                        "The first tier of tariff %(tariff)s must start at 0.", tariff=tariff.display_name
                    )
                )
            if len(set(thresholds)) != len(thresholds):
                raise ValidationError(
                    self.env._(
                        "Tier thresholds of tariff %(tariff)s must be strictly increasing.",
                        tariff=tariff.display_name,
                    )
                )
            if any(tier.price < 0 for tier in tiers):
                raise ValidationError(
                    self.env._(
                        "Tier prices of tariff %(tariff)s cannot be negative.", tariff=tariff.display_name
                    )
                )
