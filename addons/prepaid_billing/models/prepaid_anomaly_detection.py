"""Daily anomaly detection: zero consumption on an occupied unit, a consumption spike, tamper events, a meter
not read, line loss between a master meter and its sub-meters, and a meter-side balance that differs from
the platform's. One query per detector (set-based), the engine's pure detectors
(:mod:`prepaid_engine.anomaly`) judge, and each finding raises or extends the one open anomaly of its meter
and kind, with a to-do for the building's anomaly manager."""

import logging
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_metering.models.prepaid_anomaly import OPEN_STATES, _number
from odoo.tools import SQL

from prepaid_engine.anomaly import (
    DayUse,
    TamperState,
    balance_mismatch,
    expected_meter_balance,
    line_loss,
    not_read,
    spike,
    tamper,
    zero_consumption,
)

_logger = logging.getLogger(__name__)

DETECTED_KINDS = [
    ("zero_consumption", "Zero Consumption"),
    ("consumption_spike", "Consumption Spike"),
    ("tamper", "Tamper Event"),
    ("not_read", "Meter Not Read"),
    ("line_loss", "Line Loss"),
    ("balance_mismatch", "Balance Mismatch"),
]
SPIKE_HISTORY_DAYS = 30  # days of history a spike is judged against
BALANCE_WINDOW = timedelta(days=1)  # a meter-side meter's balance is checked over the last day (the job's)


def _dec(value):
    return Decimal(str(value)) if value is not None else None


def _local_yesterday(company, now):
    """The day before ``now`` (naive UTC) in the company's time zone: the daily facts are local days, and a
    nightly job just after local midnight judges the day that just ended, not the one before it."""
    zone = ZoneInfo(company.partner_id.tz or "UTC")
    return now.replace(tzinfo=UTC).astimezone(zone).date() - timedelta(days=1)


class PrepaidAnomaly(models.Model):
    _inherit = "prepaid.anomaly"

    kind = fields.Selection(
        selection_add=DETECTED_KINDS, ondelete={code: "cascade" for code, _label in DETECTED_KINDS}
    )

    # -- the cron ------------------------------------------------------------------------------------------
    @api.model
    def _cron_detect_anomalies(self, now=None):
        """Run every detector for every prepaid company. A detector that fails on bad data is logged and the
        others still run; re-running the same day adds nothing (findings already on an open anomaly are
        not added again)."""
        created = self.browse()
        for company in self.env["res.company"].sudo().search([]):
            detectors = (
                self._detect_zero_consumption,
                self._detect_spikes,
                self._detect_tamper,
                self._detect_not_read,
                self._detect_line_loss,
                self._detect_balance_mismatch,
            )
            for detector in detectors:
                try:
                    with self.env.cr.savepoint():
                        created |= detector(company.sudo(), now=now)
                except Exception:
                    _logger.exception(
                        "anomaly detector %s failed for company %s", detector.__name__, company.id
                    )
        return created

    # -- detectors (one query each) ------------------------------------------------------------------------
    @api.model
    @api.private
    def _detect_zero_consumption(self, company, now=None):
        """Occupied units (an active tenancy over the whole window, or an open prepaid account) whose meter's
        index did not move on each of the last N days (UTC days, from the day's highest valid index).
        Readings with the supply off (cut off by the platform, or a meter-side meter that ran out of money and
        tripped itself) say nothing: a meter that cannot count is not stuck."""
        now = now or fields.Datetime.now()
        n_days = company.prepaid_anomaly_zero_days
        today = now.date()
        start = datetime.combine(today - timedelta(days=n_days + 1), time.min)
        rows = self.env.execute_query(
            SQL(
                """SELECT meter_id, day, max_total - lag(max_total) OVER (PARTITION BY meter_id ORDER BY day)
                     FROM (SELECT r.meter_id, (r.read_at)::date AS day, max(r.total) AS max_total
                             FROM prepaid_meter_reading r
                             JOIN prepaid_meter m ON m.id = r.meter_id
                            WHERE r.read_at >= %(start)s AND r.read_at < %(end)s AND r.state = 'valid'
                              AND r.total IS NOT NULL AND r.supply IS DISTINCT FROM 'off'
                              AND m.active AND m.company_id = %(company)s
                              AND m.unit_id IN (
                                  SELECT rel.unit_id FROM prepaid_tenancy_unit_rel rel
                                    JOIN prepaid_tenancy t ON t.id = rel.tenancy_id
                                   WHERE t.state = 'active' AND t.date_start <= %(first)s
                                     AND (t.date_end IS NULL OR t.date_end >= %(today)s)
                                  UNION
                                  SELECT rel.unit_id FROM prepaid_account_unit_rel rel
                                    JOIN prepaid_account a ON a.id = rel.account_id
                                   WHERE a.state = 'open')
                            GROUP BY 1, 2) s""",
                start=start,
                end=datetime.combine(today, time.min),
                company=company.id,
                first=today - timedelta(days=n_days),
                today=today,
            )
        )
        days = {}
        for meter_id, day, delta in rows:
            if delta is not None:
                days.setdefault(meter_id, []).append(DayUse(day, _dec(delta)))
        findings = [zero_consumption(str(m), uses, True, n_days) for m, uses in days.items()]
        return self._raise_findings("zero_consumption", findings)

    @api.model
    @api.private
    def _detect_spikes(self, company, now=None):
        now = now or fields.Datetime.now()
        day = _local_yesterday(company, now)
        rows = self.env.execute_query(
            SQL(
                """SELECT meter_id,
                          array_agg(q ORDER BY day) FILTER (WHERE day < %(day)s),
                          max(q) FILTER (WHERE day = %(day)s)
                     FROM (SELECT meter_id, day, sum(quantity) AS q FROM prepaid_consumption
                            WHERE company_id = %(company)s AND day >= %(start)s AND day <= %(day)s
                            GROUP BY 1, 2) s
                    GROUP BY meter_id""",
                day=day,
                start=day - timedelta(days=SPIKE_HISTORY_DAYS),
                company=company.id,
            )
        )
        findings = []
        for meter_id, history, today in rows:
            if today is None or not history:
                continue
            findings.append(
                spike(
                    str(meter_id),
                    [_dec(h) for h in history],
                    _dec(today),
                    day=day,
                    k=_dec(company.prepaid_anomaly_spike_factor),
                    min_history=company.prepaid_anomaly_spike_min_days,
                    floor=_dec(company.prepaid_anomaly_spike_floor),
                )
            )
        return self._raise_findings("consumption_spike", findings)

    @api.model
    @api.private
    def _detect_tamper(self, company, now=None):
        """The two latest readings of each meter that reports tamper data, compared."""
        now = now or fields.Datetime.now()
        rows = self.env.execute_query(
            SQL(
                """SELECT meter_id, read_at, reverse_total, cover_open_count, magnetic_count
                     FROM (SELECT r.meter_id, r.read_at, r.reverse_total, r.cover_open_count,
                                  r.magnetic_count,
                                  row_number() OVER (PARTITION BY r.meter_id ORDER BY r.read_at DESC) AS n
                             FROM prepaid_meter_reading r JOIN prepaid_meter m ON m.id = r.meter_id
                            WHERE m.company_id = %(company)s AND r.read_at >= %(start)s AND r.state = 'valid'
                              AND (r.reverse_total IS NOT NULL OR r.cover_open_count IS NOT NULL
                                   OR r.magnetic_count IS NOT NULL)) s
                    WHERE n <= 2 ORDER BY meter_id, read_at""",
                company=company.id,
                start=now - timedelta(days=2),
            )
        )
        return self._raise_findings("tamper", self._tamper_findings(rows))

    @api.model
    def _tamper_findings(self, rows):
        """``rows`` (meter id, read_at, reverse_total, cover_open_count, magnetic_count), oldest first per
        meter: the engine's tamper findings of each meter's last two, each with the later reading's time."""
        by_meter = {}
        for meter_id, read_at, reverse, cover, magnetic in rows:
            state = TamperState(_dec(reverse), cover, magnetic)
            by_meter.setdefault(meter_id, []).append((read_at, state))
        findings = []
        for meter_id, states in by_meter.items():
            if len(states) < 2:
                continue
            (_before_at, before), (after_at, after) = states[-2], states[-1]
            for finding in tamper(str(meter_id), before, after):
                finding.evidence["read_at"] = after_at.replace(tzinfo=UTC).isoformat()
                findings.append(finding)
        return findings

    @api.model
    @api.private
    def _detect_not_read(self, company, now=None):
        now = now or fields.Datetime.now()
        n_cycles = company.prepaid_anomaly_not_read_cycles
        rows = self.env.execute_query(
            SQL(
                """SELECT m.id, m.last_reading_at, COALESCE(b.reading_interval, 15), m.create_date
                     FROM prepaid_meter m LEFT JOIN prepaid_property b ON b.id = m.building_id
                    WHERE m.active AND m.company_id = %s""",
                company.id,
            )
        )
        findings = []
        for meter_id, last, interval, created in rows:
            cycle = timedelta(minutes=interval or 15)
            if last is None and created and now - created <= cycle * n_cycles:
                continue  # a new meter not read yet
            finding = not_read(
                str(meter_id), last and last.replace(tzinfo=UTC), cycle, n_cycles, now.replace(tzinfo=UTC)
            )
            if finding is not None:
                finding.evidence.pop("cycles_missed")  # grows every run: not part of what is found
            findings.append(finding)
        return self._raise_findings("not_read", findings)

    @api.model
    @api.private
    def _detect_line_loss(self, company, now=None):
        """Yesterday's consumption of each active rule's master meter against its sub-meters'."""
        now = now or fields.Datetime.now()
        day = _local_yesterday(company, now)
        rows = self.env.execute_query(
            SQL(
                """SELECT r.master_meter_id,
                          (SELECT sum(c.quantity) FROM prepaid_consumption c
                            WHERE c.meter_id = r.master_meter_id AND c.day = %(day)s),
                          array_agg(COALESCE((SELECT sum(c.quantity) FROM prepaid_consumption c
                                               WHERE c.meter_id = s.meter_id AND c.day = %(day)s), 0))
                     FROM prepaid_apportionment_rule r
                     JOIN prepaid_apportionment_rule_sub_meter_rel s ON s.rule_id = r.id
                    WHERE r.active AND r.company_id = %(company)s AND r.master_meter_id IS NOT NULL
                    GROUP BY r.id, r.master_meter_id""",
                day=day,
                company=company.id,
            )
        )
        threshold = _dec(company.prepaid_anomaly_line_loss_percent) / 100
        findings = [
            line_loss(str(master), _dec(total), [_dec(q) for q in subs], threshold, day=day)
            for master, total, subs in rows
            if total is not None
        ]
        return self._raise_findings("line_loss", findings)

    @api.model
    @api.private
    def _detect_balance_mismatch(self, company, now=None):
        """Meter-side billing: over the last day, the meter's balance against what it should hold. The meter
        deducts by itself (the platform's ledger only shows the money sent to it), so what it should hold is
        its own balance at its last reading a day ago, less what it counted since at its tariff's price (the
        price meter-side meters are sent), plus the recharges it confirmed since
        (:func:`~prepaid_engine.anomaly.expected_meter_balance`)."""
        now = now or fields.Datetime.now()
        self.env["prepaid.meter.command"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """WITH cur AS (
                        SELECT DISTINCT ON (r.meter_id) r.meter_id, r.read_at, r.total, r.balance
                          FROM prepaid_meter_reading r JOIN prepaid_meter m ON m.id = r.meter_id
                         WHERE m.active AND m.company_id = %(company)s AND m.billing_mode = 'meter'
                           AND r.state = 'valid' AND r.total IS NOT NULL AND r.balance IS NOT NULL
                           AND r.read_at > %(since)s AND r.read_at <= %(now)s
                         ORDER BY r.meter_id, r.read_at DESC
                   )
                   SELECT cur.meter_id, ref.read_at, ref.total, ref.balance,
                          cur.read_at, cur.total, cur.balance,
                          (SELECT COALESCE(sum(c.amount), 0) FROM prepaid_meter_command c
                            WHERE c.meter_id = cur.meter_id AND c.kind = 'recharge' AND c.state = 'done'
                              AND c.done_at > ref.read_at AND c.done_at <= cur.read_at)
                     FROM cur
                     JOIN LATERAL (SELECT r.read_at, r.total, r.balance FROM prepaid_meter_reading r
                                    WHERE r.meter_id = cur.meter_id AND r.read_at <= %(since)s
                                      AND r.state = 'valid' AND r.total IS NOT NULL AND r.balance IS NOT NULL
                                    ORDER BY r.read_at DESC LIMIT 1) ref ON TRUE""",
                company=company.id,
                since=now - BALANCE_WINDOW,
                now=now,
            )
        )
        tolerance = _dec(company.prepaid_anomaly_balance_tolerance)
        meters = self.env["prepaid.meter"].sudo().browse([row[0] for row in rows])
        tariffs = {meter.id: meter._get_effective_tariff() for meter in meters}
        findings = []
        for meter_id, ref_at, ref_total, ref_balance, at, total, held, credited in rows:
            consumed = _dec(total) - _dec(ref_total)
            if not tariffs[meter_id] or consumed < 0:
                continue  # no price to judge by, or the index fell (a replacement): nothing to say
            expected = expected_meter_balance(
                _dec(ref_balance), consumed, _dec(tariffs[meter_id].price), _dec(credited)
            )
            finding = balance_mismatch(str(meter_id), _dec(held), expected, tolerance)
            if finding is not None:
                finding.evidence["reference_at"] = ref_at.replace(tzinfo=UTC).isoformat()
                finding.evidence["read_at"] = at.replace(tzinfo=UTC).isoformat()
                findings.append(finding)
        return self._raise_findings("balance_mismatch", findings)

    # -- raising -------------------------------------------------------------------------------------------
    @api.model
    @api.private
    def _raise_findings(self, kind, findings):
        """Extend the open anomaly of each finding's meter and ``kind`` with the finding (unless it holds it
        already), or raise one with a to-do for the building's anomaly manager."""
        items = {}
        for finding in findings:
            if finding is None:
                continue
            try:
                meter_id = int(finding.meter_key)
            except ValueError:
                _logger.warning("anomaly %s: meter key %r is not a meter id", kind, finding.meter_key)
                continue
            item = {"finding": kind, **finding.evidence}
            if finding.period_start:
                item["from"] = finding.period_start.isoformat()
            if finding.period_end:
                item["to"] = finding.period_end.isoformat()
            items.setdefault(meter_id, []).append(item)
        if not items:
            return self.browse()
        open_ones = {
            anomaly.meter_id.id: anomaly
            for anomaly in self.sudo().search(
                [("meter_id", "in", list(items)), ("kind", "=", kind), ("state", "in", OPEN_STATES)]
            )
        }
        writer = internal(self.sudo().with_context(mail_create_nolog=True))
        now = fields.Datetime.now()
        new_vals = []
        meters = self.env["prepaid.meter"].sudo().browse(list(items))
        for meter in meters:
            anomaly = open_ones.get(meter.id)
            if anomaly:
                fresh = [item for item in items[meter.id] if item not in (anomaly.evidence or [])]
                if fresh:
                    writer.browse(anomaly.id).write(
                        {"evidence": (anomaly.evidence or []) + fresh, "period_end": now}
                    )
                continue
            new_vals.append(
                {
                    "kind": kind,
                    "meter_id": meter.id,
                    "evidence": items[meter.id],
                    "period_start": now,
                    "period_end": now,
                    "user_id": self._anomaly_manager(meter).id or False,
                }
            )
        created = writer.create(new_vals) if new_vals else self.browse()
        created._schedule_detection_todo()
        return created

    @api.model
    def _anomaly_manager(self, meter):
        """Who looks after a meter's anomalies: its building's anomaly manager, else the company's first
        prepaid manager."""
        building = meter.building_id
        return building.anomaly_manager_id or self._manager_of(meter.company_id)

    def _schedule_detection_todo(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for anomaly in self:
            anomaly.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Anomaly: %(kind)s", kind=kinds.get(anomaly.kind, anomaly.kind)),
                note=self.env._(
                    "Meter %(meter)s: %(evidence)s Check the meter on site, then resolve this anomaly.",
                    meter=anomaly.meter_id.display_name,
                    evidence=anomaly.description or "",
                ),
                user_id=(anomaly.user_id or self.env.user).id,
            )

    def action_resolve(self):
        """The detected anomaly was looked at and dealt with (a detection kind has no readings to accept)."""
        self._check_manager()
        detected = {code for code, _label in DETECTED_KINDS}
        for anomaly in self._open_ones().filtered(lambda a: a.kind in detected):
            internal(anomaly).write(
                {
                    "state": "resolved",
                    "resolved_by_id": self.env.user.id,
                    "resolved_at": fields.Datetime.now(),
                }
            )
            anomaly.sudo().activity_ids.action_feedback(feedback=self.env._("Resolved"))
        return True

    # -- evidence in words ---------------------------------------------------------------------------------
    def _describe_finding(self, item, unit):
        finding = item.get("finding")
        _ = self.env._
        if finding == "zero_consumption":
            return _(
                "%(start)s - %(end)s: nothing consumed for %(days)s days on an occupied unit.",
                start=item.get("from") or "",
                end=item.get("to") or "",
                days=item.get("zero_days") or "",
            )
        if finding == "consumption_spike":
            return _(
                "%(day)s: %(today)s %(unit)s consumed, above the limit of %(limit)s %(unit)s (median "
                "%(median)s %(unit)s over %(days)s days).",
                day=item.get("from") or "",
                today=_number(item.get("today")),
                limit=_number(item.get("limit")),
                median=_number(item.get("median")),
                days=item.get("history_days") or "",
                unit=unit,
            )
        if finding == "tamper":
            events = {
                "cover_open": _("cover opened"),
                "magnetic": _("magnetic interference"),
                "reverse_energy": _("reverse energy"),
            }
            return _(
                "%(at)s: %(event)s (%(before)s -> %(after)s).",
                at=self._format_time(item.get("read_at")),
                event=events.get(item.get("event"), item.get("event") or ""),
                before=_number(item.get("before")),
                after=_number(item.get("after")),
            )
        if finding == "not_read":
            return _(
                "No reading since %(last)s (more than %(cycles)s reading cycles).",
                last=self._format_time(item.get("last_read_at")) or _("ever"),
                cycles=item.get("n_cycles") or "",
            )
        if finding == "line_loss":
            return _(
                "%(day)s: the master meter counted %(master)s %(unit)s, its %(count)s sub-meters %(subs)s "
                "%(unit)s: %(share)s %% lost (threshold %(threshold)s %%).",
                day=item.get("from") or "",
                master=_number(item.get("master")),
                subs=_number(item.get("subs_total")),
                count=item.get("sub_meters") or "",
                share=item.get("loss_share") or "",
                threshold=item.get("threshold") or "",
                unit=unit,
            )
        if finding == "balance_mismatch":
            return _(
                "The meter holds %(held)s, the platform expects %(expected)s (difference %(difference)s, "
                "tolerance %(tolerance)s).",
                held=_number(item.get("meter_balance")),
                expected=_number(item.get("expected")),
                difference=_number(item.get("difference")),
                tolerance=_number(item.get("tolerance")),
            )
        return super()._describe_finding(item, unit)
