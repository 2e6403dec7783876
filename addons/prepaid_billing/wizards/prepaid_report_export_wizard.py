"""The reports as XLSX workbooks (xlsxwriter): the order overview (every movement, row by row), the income
summary (the income per day, month or year and composition) and the consumption report (per meter, unit,
floor, building or site and per day, month or year, with the time-of-use bands and the month and year
before). Read with the user's rights (record rules apply), in chunks or grouped by the database, written in
xlsxwriter's constant-memory mode: a workbook of hundreds of thousands of movements never holds them all."""

import io
from datetime import datetime, time, timedelta

import pytz
import xlsxwriter
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..models.prepaid_report import COMPOSITION_SELECTION

CHUNK = 5000  # order overview rows read per search_read
TITLE_ROW, HEADER_ROW = 0, 2  # 0-based; the first data row follows the header
PERIOD_FORMATS = {"day": "yyyy-mm-dd", "month": "yyyy-mm", "year": "yyyy"}
# The kinds of ledger lines the income summary counts (the income report's own filter).
INCOME_KINDS = ("consumption", "fee", "apportionment")
# The order overview's columns: (field, kind); kind: datetime, text (many2one, selection), quantity, money.
ORDER_COLUMNS = (
    ("date", "datetime"),
    ("kind", "text"),
    ("account_id", "text"),
    ("partner_id", "text"),
    ("building_id", "text"),
    ("unit_id", "text"),
    ("channel", "text"),
    ("journal_id", "text"),
    ("user_id", "text"),
    ("quantity", "quantity"),
    ("amount", "money"),
)
# The consumption report's measures, in column order.
CONSUMPTION_MEASURES = (
    ("quantity", "quantity"),
    ("sharp", "quantity"),
    ("peak", "quantity"),
    ("flat", "quantity"),
    ("valley", "quantity"),
    ("free_quantity", "quantity"),
    ("amount", "money"),
    ("quantity_prev_month", "quantity"),
    ("quantity_prev_year", "quantity"),
    ("amount_prev_month", "money"),
    ("amount_prev_year", "money"),
)
DIMENSION_FIELDS = {
    "meter": "meter_id",
    "unit": "unit_id",
    "floor": "floor_id",
    "building": "building_id",
    "site": "site_id",
}


class PrepaidReportExportWizard(models.TransientModel):
    """Exports one of the reports over a period as an XLSX workbook, downloaded from
    ``/prepaid_billing/report_export/<wizard>/xlsx``."""

    _name = "prepaid.report.export.wizard"
    _description = "Export a Prepaid Report to Excel"

    report = fields.Selection(
        [("order", "Order Overview"), ("income", "Income Summary"), ("consumption", "Consumption Report")],
        required=True,
        default="order",
    )
    date_from = fields.Date(string="From", required=True, default=lambda self: self._default_date_from())
    date_to = fields.Date(string="To", required=True, default=lambda self: self._default_date_to())
    period = fields.Selection(
        [("day", "Day"), ("month", "Month"), ("year", "Year")],
        string="Group by Period",
        required=True,
        default="month",
        help="The consumption report holds months: grouped by day, its rows are the months' first days.",
    )
    dimension = fields.Selection(
        [
            ("meter", "Meter"),
            ("unit", "Unit"),
            ("floor", "Floor"),
            ("building", "Building"),
            ("site", "Site"),
        ],
        string="Group by Property",
        required=True,
        default="building",
    )
    building_ids = fields.Many2many(
        "prepaid.property",
        string="Buildings",
        domain=[("kind", "=", "building")],
        help="Only these buildings' figures; all that you may read when empty.",
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)

    def _default_date_from(self):
        return fields.Date.context_today(self).replace(day=1)

    def _default_date_to(self):
        today = fields.Date.context_today(self)
        return (today.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        for wizard in self:
            if wizard.date_to < wizard.date_from:
                raise ValidationError(self.env._("The export period ends before it starts."))

    # ------------------------------------------------------------------ actions

    def _report_model(self):
        if self.report == "consumption":
            return self.env["prepaid.consumption.report"]
        return self.env["prepaid.order.report"]

    def action_export_xlsx(self):
        self.ensure_one()
        self.check_access("read")
        self._report_model().check_access("read")
        return {
            "type": "ir.actions.act_url",
            "url": f"/prepaid_billing/report_export/{self.id}/xlsx",
            "target": "download",
        }

    def _export_filename(self):
        self.ensure_one()
        name = {"order": "order_overview", "income": "income_summary", "consumption": "consumption_report"}
        return f"{name[self.report]}_{self.date_from}_{self.date_to}.xlsx"

    # ------------------------------------------------------------------ reading (the user's rights)

    def _tz(self):
        return pytz.timezone(self.env.user.tz or "UTC")

    def _datetime_bounds(self):
        """The local days from/to as naive UTC datetimes (the user's time zone), the end excluded."""
        tz = self._tz()
        start = tz.localize(datetime.combine(self.date_from, time.min)).astimezone(pytz.UTC)
        end = tz.localize(datetime.combine(self.date_to + timedelta(days=1), time.min)).astimezone(pytz.UTC)
        return start.replace(tzinfo=None), end.replace(tzinfo=None)

    def _domain(self):
        """The report model's domain of the wizard (period, company, buildings)."""
        self.ensure_one()
        domain = [("company_id", "=", self.company_id.id)]
        if self.building_ids:
            domain.append(("building_id", "in", self.building_ids.ids))
        if self.report == "consumption":
            # Months: those the period touches.
            return [*domain, ("day", ">=", self.date_from.replace(day=1)), ("day", "<=", self.date_to)]
        start, end = self._datetime_bounds()
        domain += [("date", ">=", start), ("date", "<", end)]
        if self.report == "income":
            domain.append(("kind", "in", INCOME_KINDS))
        return domain

    def _order_chunks(self):
        """The order overview's rows as ``search_read`` dicts, ``CHUNK`` at a time, by id (keyset: each chunk
        starts after the last id of the one before; the cache is dropped between chunks)."""
        Report = self.env["prepaid.order.report"]
        domain = self._domain()
        names = [name for name, _kind in ORDER_COLUMNS]
        last_id = 0
        while True:
            rows = Report.search_read([*domain, ("id", ">", last_id)], names, order="id", limit=CHUNK)
            if not rows:
                return
            yield rows
            last_id = rows[-1]["id"]
            self.env.invalidate_all()
            if len(rows) < CHUNK:
                return

    def _income_groups(self):
        """``(period start, composition, income)`` in period order."""
        Report = self.env["prepaid.order.report"].with_context(tz=self._tz().zone)
        groupby = f"date:{self.period}"
        return Report._read_group(
            self._domain(), [groupby, "composition"], ["income:sum"], order=f"{groupby}, composition"
        )

    def _consumption_groups(self):
        """``(property, utility, period start, *measures)`` by property then period."""
        Report = self.env["prepaid.consumption.report"]
        dimension = DIMENSION_FIELDS[self.dimension]
        period = f"day:{self.period}"
        return Report._read_group(
            self._domain(),
            [dimension, "utility", period],
            [f"{name}:sum" for name, _kind in CONSUMPTION_MEASURES],
            order=f"{dimension}, utility, {period}",
        )

    # ------------------------------------------------------------------ writing

    def _export_xlsx(self, target=None):
        """Write the workbook into ``target`` (a binary file object); without one, return its bytes."""
        self.ensure_one()
        self.check_access("read")
        self._report_model().check_access("read")
        out = target if target is not None else io.BytesIO()
        book = xlsxwriter.Workbook(out, {"constant_memory": True})
        writer = _SheetWriter(self, book)
        {"order": writer.write_order, "income": writer.write_income, "consumption": writer.write_consumption}[
            self.report
        ]()
        book.close()
        return None if target is not None else out.getvalue()


class _SheetWriter:
    """One report's sheet: the title row, the header, the rows (in row order: constant-memory mode) and the
    totals."""

    def __init__(self, wizard, book):
        self.wizard = wizard
        self.env = wizard.env
        self.book = book
        digits = wizard.company_id.currency_id.decimal_places
        money = "#,##0" + ("." + "0" * digits if digits else "")
        self.formats = {
            "title": book.add_format({"bold": True, "font_size": 13}),
            "header": book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True}),
            "money": book.add_format({"num_format": money}),
            "quantity": book.add_format({"num_format": "#,##0.000"}),
            "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "total": book.add_format({"bold": True, "top": 1}),
            "total_money": book.add_format({"bold": True, "top": 1, "num_format": money}),
            "total_quantity": book.add_format({"bold": True, "top": 1, "num_format": "#,##0.000"}),
            **{
                f"period_{period}": book.add_format({"num_format": fmt, "align": "left"})
                for period, fmt in PERIOD_FORMATS.items()
            },
        }
        report_label = dict(wizard._fields["report"]._description_selection(self.env))[wizard.report]
        self.sheet = book.add_worksheet(_sheet_name(report_label))
        self.report_label = report_label
        self.row = HEADER_ROW + 1

    # -- helpers

    def label(self, model, name):
        return self.env[model]._fields[name]._description_string(self.env)

    def selection(self, model, name):
        return dict(self.env[model]._fields[name]._description_selection(self.env))

    def title(self, width):
        wizard = self.wizard
        _ = self.env._
        now = datetime.now(pytz.UTC).astimezone(wizard._tz())
        cells = (
            wizard.company_id.name,
            self.report_label,
            _(
                "Period: %(date_from)s to %(date_to)s",
                date_from=fields.Date.to_string(wizard.date_from),
                date_to=fields.Date.to_string(wizard.date_to),
            ),
            _(
                "Generated on %(when)s (%(tz)s)",
                when=now.strftime("%Y-%m-%d %H:%M"),
                tz=wizard._tz().zone,
            ),
        )
        for col, value in enumerate(cells):
            self.sheet.write_string(TITLE_ROW, col, value or "", self.formats["title"])
        self.sheet.set_column(0, max(width - 1, len(cells) - 1), 16)

    def header(self, titles):
        self.sheet.write_row(HEADER_ROW, 0, titles, self.formats["header"])
        self.sheet.freeze_panes(HEADER_ROW + 1, 0)

    def write_value(self, col, value, kind):
        if kind in ("money", "quantity"):
            self.sheet.write_number(self.row, col, value or 0.0, self.formats[kind])
        elif kind == "datetime":
            self.sheet.write_datetime(self.row, col, value, self.formats["datetime"])
        elif kind.startswith("period_"):
            self.sheet.write_datetime(self.row, col, value, self.formats[kind])
        else:
            self.sheet.write_string(self.row, col, value or "")

    def totals(self, width, sums):
        """The autofilter over the rows, then the totals row: ``sums`` maps a column to (value, kind)."""
        last = self.row - 1
        self.sheet.autofilter(HEADER_ROW, 0, max(last, HEADER_ROW), width - 1)
        self.sheet.write_string(self.row, 0, self.env._("Total"), self.formats["total"])
        for col in range(1, width):
            value, kind = sums.get(col, (None, None))
            if kind is None:
                self.sheet.write_blank(self.row, col, None, self.formats["total"])
            else:
                self.sheet.write_number(self.row, col, value, self.formats[f"total_{kind}"])

    # -- the reports

    def write_order(self):
        model = "prepaid.order.report"
        width = len(ORDER_COLUMNS)
        self.title(width)
        self.header([self.label(model, name) for name, _kind in ORDER_COLUMNS])
        selections = {name: self.selection(model, name) for name in ("kind", "channel")}
        tz = self.wizard._tz()
        sums = {col: 0.0 for col, (_name, kind) in enumerate(ORDER_COLUMNS) if kind in ("money", "quantity")}
        for rows in self.wizard._order_chunks():
            for record in rows:
                for col, (name, kind) in enumerate(ORDER_COLUMNS):
                    value = record[name]
                    if kind == "datetime":
                        value = pytz.UTC.localize(value).astimezone(tz).replace(tzinfo=None)
                    elif name in selections:
                        value = selections[name].get(value, "") if value else ""
                    elif kind == "text":
                        value = value[1] if value else ""
                    else:
                        sums[col] += value or 0.0
                    self.write_value(col, value, kind)
                self.row += 1
        self.totals(width, {col: (value, ORDER_COLUMNS[col][1]) for col, value in sums.items()})

    def write_income(self):
        model = "prepaid.order.report"
        groups = self.wizard._income_groups()
        present = {composition for _period, composition, _income in groups}
        compositions = [key for key, _label in COMPOSITION_SELECTION if key in present]
        labels = self.selection(model, "composition")
        width = len(compositions) + 2
        self.title(width)
        period_label = self.label(model, "date")
        self.header([period_label, *(labels[key] for key in compositions), self.env._("Total")])
        table = {}
        for period, composition, income in groups:
            table.setdefault(_as_date(period), {})[composition] = income
        sums = dict.fromkeys(range(1, width), 0.0)
        for period, by_composition in table.items():
            self.write_value(0, period, f"period_{self.wizard.period}")
            for col, key in enumerate(compositions, start=1):
                value = by_composition.get(key, 0.0)
                self.write_value(col, value, "money")
                sums[col] += value
            total = sum(by_composition.values())
            self.write_value(width - 1, total, "money")
            sums[width - 1] += total
            self.row += 1
        self.totals(width, {col: (value, "money") for col, value in sums.items()})

    def write_consumption(self):
        model = "prepaid.consumption.report"
        dimension = DIMENSION_FIELDS[self.wizard.dimension]
        width = 3 + len(CONSUMPTION_MEASURES)
        self.title(width)
        self.header(
            [
                self.label(model, dimension),
                self.label(model, "utility"),
                self.label(model, "day"),
                *(self.label(model, name) for name, _kind in CONSUMPTION_MEASURES),
            ]
        )
        utilities = self.selection(model, "utility")
        sums = dict.fromkeys(range(3, width), 0.0)
        none = self.env._("None")
        for prop, utility, period, *measures in self.wizard._consumption_groups():
            # The name of a property the row already names (as ``read`` gives a many2one's name).
            self.write_value(0, prop.sudo().display_name if prop else none, "text")
            self.write_value(1, utilities.get(utility, "") if utility else "", "text")
            self.write_value(2, _as_date(period), f"period_{self.wizard.period}")
            for col, (value, (_name, kind)) in enumerate(zip(measures, CONSUMPTION_MEASURES, strict=True), 3):
                self.write_value(col, value, kind)
                sums[col] += value or 0.0
            self.row += 1
        self.totals(width, {col: (value, CONSUMPTION_MEASURES[col - 3][1]) for col, value in sums.items()})


def _as_date(value):
    """A period's start as a date (``_read_group`` gives datetimes for a datetime field)."""
    return value.date() if isinstance(value, datetime) else value


def _sheet_name(label):
    """Excel's sheet names: 31 characters, none of ``[]:*?/\\``."""
    return "".join("-" if char in "[]:*?/\\" else char for char in label)[:31] or "Sheet1"
