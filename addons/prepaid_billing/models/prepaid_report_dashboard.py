from datetime import UTC, datetime, time

import pytz
from dateutil.relativedelta import relativedelta
from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_account import LEVEL_SELECTION
from odoo.addons.prepaid_base.models.prepaid_tariff import UNIT_SELECTION, UTILITY_SELECTION, UTILITY_UNIT
from odoo.addons.prepaid_metering.models.prepaid_anomaly import OPEN_STATES
from odoo.tools.misc import format_date

from .prepaid_account import LIVE_STATES

# The ledger kinds whose deductions are income (the report's ``income`` is their charge, 0 elsewhere).
INCOME_KINDS = ("consumption", "fee", "apportionment")
# The low-balance levels above the cut-off: an account there is warned, not cut.
WARNING_LEVELS = tuple(level for level, _label in LEVEL_SELECTION if level.startswith("warning"))
# How many months the charts cover, this month included.
CHART_MONTHS = 12


class PrepaidReportDashboard(models.AbstractModel):
    """The figures of the Reports > Dashboard page, read from the report models as the user reads them (their
    access rights and record rules apply: an operator limited to a floor sees that floor's figures). Every
    figure comes with the window action that opens it, on the same domain: a card shows what its report
    sums."""

    _name = "prepaid.report.dashboard"
    _description = "Prepaid Reports Dashboard"

    @api.model
    def get_dashboard_data(self):
        """Everything the dashboard shows for the current company, as plain JSON: the currency, the KPI cards
        (label, value, comparison, action), the income by month and composition, and the consumption by month
        per utility beside the same month a year before. Raises AccessError to whoever may not read the
        reports."""
        self.env["prepaid.order.report"].check_access("read")
        self.env["prepaid.consumption.report"].check_access("read")
        company = self.env.company
        periods = self._dashboard_periods()
        currency = company.currency_id
        return {
            "company": company.name,
            "currency": {
                "symbol": currency.symbol,
                "position": currency.position,
                "digits": currency.decimal_places,
            },
            "today": periods["today"].isoformat(),
            "kpis": [
                *self._dashboard_income_kpis(company, periods),
                *self._dashboard_consumption_kpis(company, periods),
                *self._dashboard_account_kpis(company),
            ],
            "income_chart": self._dashboard_income_chart(company, periods),
            "consumption_charts": self._dashboard_consumption_charts(company, periods),
        }

    # ------------------------------------------------------------------ periods

    def _dashboard_tz(self):
        tz = self.env.context.get("tz") or self.env.user.tz or "UTC"
        return tz if tz in pytz.all_timezones_set else "UTC"

    def _dashboard_periods(self):
        """Today, this month, this year and the charts' first month in the user's time zone; ``bounds`` are
        their starts as the UTC datetimes the ledger is dated in."""
        tz = pytz.timezone(self._dashboard_tz())
        today = datetime.now(UTC).astimezone(tz).date()
        month = today.replace(day=1)
        starts = {
            "today": today,
            "tomorrow": today + relativedelta(days=1),
            "month": month,
            "next_month": month + relativedelta(months=1),
            "prev_month": month - relativedelta(months=1),
            "year": month.replace(month=1),
            "next_year": month.replace(month=1) + relativedelta(years=1),
            "chart_start": month - relativedelta(months=CHART_MONTHS - 1),
        }

        def utc(day):
            local = tz.localize(datetime.combine(day, time.min))
            return fields.Datetime.to_string(local.astimezone(pytz.UTC).replace(tzinfo=None))

        return {**starts, "bounds": {name: utc(day) for name, day in starts.items()}}

    def _dashboard_months(self, periods):
        """The charts' months, oldest first (first days)."""
        return [periods["chart_start"] + relativedelta(months=i) for i in range(CHART_MONTHS)]

    def _dashboard_month_label(self, month):
        return format_date(self.env, month, date_format="MMM yyyy")

    # ------------------------------------------------------------------ actions

    def _dashboard_action(self, xmlid, name, domain, context=None):
        """The window action ``xmlid`` on ``domain`` (its search defaults dropped: the domain says it all)."""
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action.update({"name": name, "display_name": name, "domain": domain, "context": context or {}})
        return action

    def _dashboard_card(self, key, label, value, action, **extra):
        card = {
            "key": key,
            "label": label,
            "value": value,
            "format": "integer",
            "unit": "",
            "previous": None,
            "change": None,
            "comparison": "",
            "note": "",
            "action": action,
        }
        card.update(extra)
        return card

    # ------------------------------------------------------------------ income and top-ups

    def _dashboard_income_domain(self, company, periods, start, end):
        bounds = periods["bounds"]
        return [
            ("company_id", "=", company.id),
            ("kind", "in", INCOME_KINDS),
            ("date", ">=", bounds[start]),
            ("date", "<", bounds[end]),
        ]

    def _dashboard_income_kpis(self, company, periods):
        Order = self.env["prepaid.order.report"]
        cards = []
        for key, label, start, end in (
            ("income_today", self.env._("Income Today"), "today", "tomorrow"),
            ("income_month", self.env._("Income This Month"), "month", "next_month"),
            ("income_year", self.env._("Income This Year"), "year", "next_year"),
        ):
            domain = self._dashboard_income_domain(company, periods, start, end)
            [(income,)] = Order._read_group(domain, aggregates=["income:sum"])
            action = self._dashboard_action("prepaid_billing.prepaid_income_report_action", label, domain)
            cards.append(self._dashboard_card(key, label, income or 0.0, action, format="monetary"))
        bounds = periods["bounds"]
        domain = [
            ("company_id", "=", company.id),
            ("kind", "=", "topup"),
            ("date", ">=", bounds["month"]),
            ("date", "<", bounds["next_month"]),
        ]
        [(amount, count)] = Order._read_group(domain, aggregates=["amount:sum", "__count"])
        label = self.env._("Top-ups This Month")
        cards.append(
            self._dashboard_card(
                "topup_month",
                label,
                amount or 0.0,
                self._dashboard_action("prepaid_billing.prepaid_order_report_action", label, domain),
                format="monetary",
                note=self.env._("%(count)s top-ups", count=count),
            )
        )
        return cards

    def _dashboard_income_chart(self, company, periods):
        """Income by month (the last twelve, in the user's time zone) stacked by composition."""
        Order = self.env["prepaid.order.report"].with_context(tz=self._dashboard_tz())
        domain = self._dashboard_income_domain(company, periods, "chart_start", "next_month")
        groups = Order._read_group(domain, groupby=["date:month", "composition"], aggregates=["income:sum"])
        months = self._dashboard_months(periods)
        sums = {}
        for month, composition, income in groups:
            sums[composition] = sums.get(composition, {})
            sums[composition][month.date()] = income
        labels = dict(Order._fields["composition"]._description_selection(self.env))
        datasets = [
            {
                "key": composition,
                "label": labels[composition],
                "data": [sums[composition].get(month, 0.0) for month in months],
            }
            for composition in labels
            if any(sums.get(composition, {}).values())
        ]
        return {
            "title": self.env._("Income by Month"),
            "labels": [self._dashboard_month_label(month) for month in months],
            "datasets": datasets,
        }

    # ------------------------------------------------------------------ consumption

    def _dashboard_consumption_sums(self, company, first, last):
        """{(utility, month): quantity} of the consumption report from month ``first`` to ``last``."""
        groups = self.env["prepaid.consumption.report"]._read_group(
            [("company_id", "=", company.id), ("day", ">=", first), ("day", "<=", last)],
            groupby=["utility", "day:month"],
            aggregates=["quantity:sum"],
        )
        return {(utility, month): quantity for utility, month, quantity in groups}

    def _dashboard_unit_labels(self):
        units = dict(UNIT_SELECTION)
        return {utility: units.get(unit, unit) for utility, unit in UTILITY_UNIT.items()}

    def _dashboard_consumption_kpis(self, company, periods):
        month, prev = periods["month"], periods["prev_month"]
        sums = self._dashboard_consumption_sums(company, prev, month)
        units = self._dashboard_unit_labels()
        labels = {
            "electricity": self.env._("Electricity This Month"),
            "water": self.env._("Water This Month"),
        }
        comparison = self.env._("vs %(month)s", month=self._dashboard_month_label(prev))
        cards = []
        for utility, _label in UTILITY_SELECTION:
            current = sums.get((utility, month), 0.0)
            previous = sums.get((utility, prev), 0.0)
            domain = [
                ("company_id", "=", company.id),
                ("utility", "=", utility),
                ("day", "=", fields.Date.to_string(month)),
            ]
            label = labels.get(utility, utility)
            action = self._dashboard_action(
                "prepaid_billing.prepaid_consumption_report_action",
                label,
                domain,
                {"pivot_measures": ["quantity", "quantity_prev_month", "quantity_prev_year"]},
            )
            cards.append(
                self._dashboard_card(
                    f"{utility}_month",
                    label,
                    current,
                    action,
                    format="quantity",
                    unit=units.get(utility, ""),
                    previous=previous,
                    change=round((current - previous) / previous * 100.0, 1) if previous else None,
                    comparison=comparison,
                )
            )
        return cards

    def _dashboard_consumption_charts(self, company, periods):
        """Per utility: the quantity of each of the last twelve months beside the same month a year before."""
        months = self._dashboard_months(periods)
        sums = self._dashboard_consumption_sums(company, months[0] - relativedelta(years=1), periods["month"])
        units = self._dashboard_unit_labels()
        titles = {
            "electricity": self.env._("Electricity by Month (%(unit)s)", unit=units["electricity"]),
            "water": self.env._("Water by Month (%(unit)s)", unit=units["water"]),
        }
        return [
            {
                "utility": utility,
                "title": titles.get(utility, utility),
                "unit": units.get(utility, ""),
                "labels": [self._dashboard_month_label(month) for month in months],
                "datasets": [
                    {
                        "key": "current",
                        "label": self.env._("Month"),
                        "data": [sums.get((utility, month), 0.0) for month in months],
                    },
                    {
                        "key": "previous_year",
                        "label": self.env._("Same Month Last Year"),
                        "data": [
                            sums.get((utility, month - relativedelta(years=1)), 0.0) for month in months
                        ],
                    },
                ],
            }
            for utility, _label in UTILITY_SELECTION
        ]

    # ------------------------------------------------------------------ accounts and anomalies

    def _dashboard_account_kpis(self, company):
        """Open anomalies, accounts cut off and accounts warned: for whoever reads them (an accountant without
        prepaid rights gets the money figures only)."""
        cards = []
        Anomaly = self.env["prepaid.anomaly"]
        if Anomaly.has_access("read"):
            domain = [("company_id", "=", company.id), ("state", "in", OPEN_STATES)]
            label = self.env._("Open Anomalies")
            cards.append(
                self._dashboard_card(
                    "anomalies_open",
                    label,
                    Anomaly.search_count(domain),
                    self._dashboard_action("prepaid_metering.prepaid_anomaly_action", label, domain),
                )
            )
        Account = self.env["prepaid.account"]
        if Account.has_access("read"):
            for key, label, domain in (
                ("accounts_cut", self.env._("Accounts Cut Off"), [("supply_cut", "=", True)]),
                (
                    "accounts_warning",
                    self.env._("Accounts in Warning"),
                    [("level", "in", WARNING_LEVELS), ("state", "in", LIVE_STATES)],
                ),
            ):
                domain = [("company_id", "=", company.id), *domain]
                cards.append(
                    self._dashboard_card(
                        key,
                        label,
                        Account.search_count(domain),
                        self._dashboard_action("prepaid_base.prepaid_account_action", label, domain),
                    )
                )
        return cards
