from datetime import datetime, time, timedelta

import pytz
from odoo import api, fields, models
from odoo.exceptions import ValidationError

# The movements a cashier's shift counts: the money taken and given back.
SHIFT_KINDS = ("topup", "reversal", "refund")


class PrepaidShiftReportWizard(models.TransientModel):
    """The cashier shift report: one operator's top-ups, reversals and refunds between two local days, with
    the totals per channel and journal, printed for signing. Its figures are the order overview's (what the
    user may read of it)."""

    _name = "prepaid.shift.report.wizard"
    _description = "Cashier Shift Report"

    user_id = fields.Many2one(
        "res.users", string="Operator", required=True, default=lambda self: self.env.user
    )
    date_from = fields.Date(string="From", required=True, default=fields.Date.context_today)
    date_to = fields.Date(string="To", required=True, default=fields.Date.context_today)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        for wizard in self:
            if wizard.date_to < wizard.date_from:
                raise ValidationError(self.env._("The shift report ends before it starts."))

    def _bounds(self):
        """The local days as naive UTC datetimes (the user's time zone)."""
        tz = pytz.timezone(self.env.user.tz or "UTC")
        start = tz.localize(datetime.combine(self.date_from, time.min)).astimezone(pytz.UTC)
        end = tz.localize(datetime.combine(self.date_to + timedelta(days=1), time.min)).astimezone(pytz.UTC)
        return start.replace(tzinfo=None), end.replace(tzinfo=None)

    def _shift_lines(self):
        self.ensure_one()
        start, end = self._bounds()
        return self.env["prepaid.order.report"].search(
            [
                ("user_id", "=", self.user_id.id),
                ("company_id", "=", self.company_id.id),
                ("kind", "in", SHIFT_KINDS),
                ("date", ">=", start),
                ("date", "<", end),
            ],
            order="date, id",
        )

    def _shift_totals(self):
        """``[(channel label, journal name, count, amount)]`` and the grand total."""
        self.ensure_one()
        channels = dict(self.env["prepaid.order.report"]._fields["channel"]._description_selection(self.env))
        totals = {}
        lines = self._shift_lines()
        for line in lines:
            key = (channels.get(line.channel, ""), line.journal_id.display_name or "")
            count, amount = totals.get(key, (0, 0.0))
            totals[key] = (count + 1, amount + line.amount)
        rows = [(*key, count, amount) for key, (count, amount) in sorted(totals.items())]
        return rows, sum(lines.mapped("amount"))

    def action_print(self):
        self.ensure_one()
        self.env["prepaid.order.report"].check_access("read")
        return self.env.ref("prepaid_billing.action_report_prepaid_shift").report_action(self)

    def action_export_xlsx(self):
        self.ensure_one()
        self.check_access("read")
        self.env["prepaid.order.report"].check_access("read")
        return {
            "type": "ir.actions.act_url",
            "url": f"/prepaid_billing/shift_report/{self.id}/xlsx",
            "target": "download",
        }

    def _export_xlsx(self):
        """The shift report as an XLSX workbook (bytes): the totals, then the movements."""
        import io

        import xlsxwriter

        self.ensure_one()
        _ = self.env._
        rows, total = self._shift_totals()
        out = io.BytesIO()
        book = xlsxwriter.Workbook(out, {"in_memory": True})
        sheet = book.add_worksheet(_("Shift")[:31])
        bold = book.add_format({"bold": True})
        money = book.add_format({"num_format": "#,##0.00"})
        sheet.write(0, 0, _("Cashier Shift Report"), bold)
        sheet.write(1, 0, _("Operator"))
        sheet.write(1, 1, self.user_id.display_name)
        sheet.write(2, 0, _("From"))
        sheet.write(2, 1, fields.Date.to_string(self.date_from))
        sheet.write(3, 0, _("To"))
        sheet.write(3, 1, fields.Date.to_string(self.date_to))
        row = 5
        for col, title in enumerate((_("Channel"), _("Journal"), _("Count"), _("Amount"))):
            sheet.write(row, col, title, bold)
        for channel, journal, count, amount in rows:
            row += 1
            sheet.write_row(row, 0, (channel, journal, count))
            sheet.write_number(row, 3, amount, money)
        row += 1
        sheet.write(row, 0, _("Total"), bold)
        sheet.write_number(row, 3, total, money)
        row += 2
        kinds = dict(self.env["prepaid.order.report"]._fields["kind"]._description_selection(self.env))
        for col, title in enumerate(
            (_("Date"), _("Kind"), _("Account"), _("Tenant"), _("Journal"), _("Amount"))
        ):
            sheet.write(row, col, title, bold)
        for line in self._shift_lines():
            row += 1
            sheet.write_row(
                row,
                0,
                (
                    fields.Datetime.to_string(fields.Datetime.context_timestamp(self, line.date)),
                    kinds.get(line.kind, line.kind),
                    line.account_id.display_name or "",
                    line.partner_id.display_name or "",
                    line.journal_id.display_name or "",
                ),
            )
            sheet.write_number(row, 5, line.amount, money)
        sheet.set_column(0, 5, 18)
        book.close()
        return out.getvalue()
