from datetime import UTC

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_metering.models.prepaid_anomaly import OPEN_STATES, _number


class PrepaidAnomaly(models.Model):
    _inherit = "prepaid.anomaly"

    kind = fields.Selection(
        selection_add=[("unbilled_consumption", "Unbilled Consumption"), ("negative_loss", "Negative Loss")],
        ondelete={"unbilled_consumption": "cascade", "negative_loss": "cascade"},
    )

    @api.model
    @api.private
    def _raise_unbilled(self, consumed):
        """Consumption settled without a charge on a tenant's unit is not normal (a closed account whose
        meter was not cut, a unit without an open account): for ``[(meter row, intervals)]`` of a settlement
        batch, extend the meter's open unbilled-consumption anomaly, or raise one with a manager's to-do.
        Common-area meters (no unit) and meter-side billing are unbilled by design and raise nothing."""
        todo = [
            (row, intervals)
            for row, intervals in consumed
            if intervals and row.unit_id and row.billing_mode == "platform"
        ]
        if not todo:
            return self.browse()
        meter_ids = [row.id for row, _intervals in todo]
        open_ones = {
            anomaly.meter_id.id: anomaly
            for anomaly in self.sudo().search(
                [
                    ("meter_id", "in", meter_ids),
                    ("kind", "=", "unbilled_consumption"),
                    ("state", "in", OPEN_STATES),
                ]
            )
        }
        writer = internal(self.sudo().with_context(mail_create_nolog=True))
        new_vals = []
        for row, intervals in todo:
            start = min(interval.start for interval in intervals).astimezone(UTC).replace(tzinfo=None)
            end = max(interval.end for interval in intervals).astimezone(UTC).replace(tzinfo=None)
            item = {
                "finding": "unbilled",
                "quantity": str(sum(interval.total for interval in intervals)),
                "from": intervals[0].start.isoformat(),
                "to": intervals[-1].end.isoformat(),
                "account_state": row.account_state or "",
            }
            anomaly = open_ones.get(row.id)
            if anomaly:
                writer.browse(anomaly.id).write(
                    {
                        "evidence": (anomaly.evidence or []) + [item],
                        "period_end": max(anomaly.period_end or end, end),
                    }
                )
                continue
            meter = self.env["prepaid.meter"].sudo().browse(row.id)
            new_vals.append(
                {
                    "kind": "unbilled_consumption",
                    "meter_id": row.id,
                    "evidence": [item],
                    "period_start": start,
                    "period_end": end,
                    "user_id": self._manager_of(meter.company_id).id or False,
                }
            )
        created = writer.create(new_vals) if new_vals else self.browse()
        for anomaly in created:
            anomaly.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Consumption nobody was charged for"),
                note=self.env._(
                    "Meter %(meter)s of a tenant's unit consumed with no open account to charge (closed, not "
                    "opened yet, or none): cut its supply or open the account, then resolve this anomaly.",
                    meter=anomaly.meter_id.display_name,
                ),
                user_id=(anomaly.user_id or self.env.user).id,
            )
        return created

    def _describe_finding(self, item, unit):
        if item.get("finding") == "loss.negative":
            return self.env._(
                "%(bill)s (%(start)s - %(end)s): the sub-meters add up to %(sub)s %(unit)s, more than the "
                "%(master)s %(unit)s of the master meter (difference %(difference)s %(unit)s); no loss "
                "charged.",
                bill=item.get("bill") or "",
                start=item.get("from") or "",
                end=item.get("to") or "",
                sub=_number(item.get("sub_total")),
                master=_number(item.get("master")),
                difference=_number(item.get("difference")),
                unit=unit,
            )
        if item.get("finding") != "unbilled":
            return super()._describe_finding(item, unit)
        states = dict(self.env["prepaid.account"]._fields["state"]._description_selection(self.env))
        return self.env._(
            "%(start)s - %(end)s: %(quantity)s %(unit)s consumed with no open account to charge (%(state)s).",
            start=self._format_time(item.get("from")),
            end=self._format_time(item.get("to")),
            quantity=_number(item.get("quantity")),
            unit=unit,
            state=states.get(item.get("account_state")) or self.env._("no account"),
        )
