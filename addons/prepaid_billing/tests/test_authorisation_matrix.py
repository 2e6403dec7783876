"""The authorisation matrix of the suite: who may read, write, create and unlink each model, and call each of
its public methods, written down as tables and checked the way RPC calls them.

Every call goes through what ``/web/dataset/call_kw`` does (``get_public_method`` then ``odoo.api.call_kw``),
as a real user of each group, with hostile context keys injected (the context of an RPC call is caller
input): the former internal-write keys, ``prepaid_internal`` set to what JSON can carry, ``active_test``,
``tracking_disable``, ``install_mode``...

The test fails the day someone adds a model or a public method without deciding who may call it: every
model of the suite's addons must be in :data:`CRUD` (or :data:`NOT_RECORDS`) and every public method of
them in :data:`METHODS`.

Groups: ``op_one`` (operator limited to one floor), ``op_all`` (operator of the whole company), ``manager``,
``accountant`` (billing administrator without prepaid rights), ``portal`` (a tenant bound to the fixture
account), ``public``. The fixture records are in ``op_one``'s floor: a refusal there is the group's, not the
scope's (the scope has its own test below).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import odoo
from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.service.model import get_public_method
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger
from psycopg2 import IntegrityError

from prepaid_engine.types import Reading

from .common import BillingCommon

GROUPS = ("op_one", "op_all", "manager", "accountant", "portal", "public")
OPS = ("op_one", "op_all", "manager")  # everyone with prepaid rights
MGR = ("manager",)
NOBODY = ()

# model -> {group: the operations it may do, among r(ead) w(rite) c(reate) u(nlink)}
CRUD = {
    "prepaid.property": {"op_one": "rwc", "op_all": "rwc", "manager": "rwcu"},
    "prepaid.tenancy": {"op_one": "rwc", "op_all": "rwc", "manager": "rwcu"},
    "prepaid.account": {"op_one": "rwc", "op_all": "rwc", "manager": "rwcu", "portal": "r"},
    "prepaid.ledger": {"op_one": "r", "op_all": "r", "manager": "r", "portal": "r"},
    "prepaid.tariff": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.tariff.period": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.tariff.tier": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.fee.item": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.gateway": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.gateway.bus": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.meter.model": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.meter": {"op_one": "rw", "op_all": "rw", "manager": "rwcu"},
    "prepaid.meter.reading": {"op_one": "r", "op_all": "r", "manager": "rc"},
    "prepaid.meter.command": {"op_one": "r", "op_all": "r", "manager": "r"},
    "prepaid.comm.log": {"op_one": "r", "op_all": "r", "manager": "ru"},
    "prepaid.platform": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.push.message": {"op_one": "r", "op_all": "r", "manager": "ru"},
    "prepaid.sitemap.import": {"manager": "rwc"},
    "prepaid.topup": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.topup.wizard": {"op_one": "rwc", "op_all": "rwc", "manager": "rwc"},
    "prepaid.reverse.wizard": {"manager": "rwc"},
    "prepaid.temporary.supply.wizard": {"manager": "rwc"},
    "prepaid.refund.wizard": {"manager": "rwc"},
    "prepaid.settlement.cursor": {"op_one": "r", "op_all": "r", "manager": "r"},
    "prepaid.meter.replacement": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.summary": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.anomaly": {"op_one": "r", "op_all": "r", "manager": "rw"},
    "prepaid.consumption": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.apportionment.rule": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.apportionment.rule.line": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.apportionment.bill": {"op_one": "r", "op_all": "r", "manager": "rw"},  # created by the rules
    "prepaid.apportionment.bill.line": {"op_one": "r", "op_all": "r", "manager": "r"},
    # The monthly ledger covers a whole building: an operator limited to one floor does not read it.
    "prepaid.monthly.ledger": {"op_all": "r", "manager": "rwu"},
    "prepaid.monthly.ledger.line": {"op_all": "r", "manager": "r"},
    "prepaid.monthly.ledger.wizard": {"manager": "rwc"},
    "prepaid.statement": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.statement.line": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.fee.charge": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},  # by the fee run
    # issue 13: batch operations (managers create and run them; operators follow their results)
    "prepaid.batch.operation": {"op_one": "r", "op_all": "r", "manager": "rwc"},
    "prepaid.batch.operation.line": {"op_one": "r", "op_all": "r", "manager": "r"},  # made by the run
    # issue 13: account opening
    "prepaid.account.opening": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    # issue 13: reports (read-only SQL views)
    "prepaid.order.report": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.consumption.report": {"op_one": "r", "op_all": "r", "manager": "r", "accountant": "r"},
    "prepaid.shift.report.wizard": {"op_one": "rwc", "op_all": "rwc", "manager": "rwc", "accountant": "rwc"},
    "prepaid.report.export.wizard": {"op_one": "rwc", "op_all": "rwc", "manager": "rwc", "accountant": "rwc"},
}
# Models that hold no records of their own: nobody reads or writes them as such.
NOT_RECORDS = {
    "prepaid.guard.mixin": "abstract: the guarded-write mixin of the suite's models",
    "prepaid.settlement": "abstract: the set-based settlement service (its methods are private)",
    "prepaid.monthly.ledger.figures": "abstract: the figure fields of a monthly ledger and of its lines",
    # issue 13: reports
    "prepaid.report.dashboard": "abstract: the figures of the reports' dashboard (read from the reports)",
}

# (model, public method) -> the groups that may call it. A call is refused when it raises AccessError (a
# UserError about the record's state, after the rights were checked, counts as allowed).
METHODS = {
    ("prepaid.account", "action_open"): OPS,
    ("prepaid.account", "action_suspend"): OPS,
    ("prepaid.account", "action_reopen"): OPS,  # a suspended account; a closed one is for managers (below)
    ("prepaid.account", "action_close"): MGR,
    ("prepaid.account", "action_recompute_balance"): MGR,
    ("prepaid.account", "action_open_topup_wizard"): OPS,
    ("prepaid.account", "action_open_reverse_wizard"): MGR,
    ("prepaid.account", "action_open_refund_wizard"): MGR,
    # Navigation (a window action, no data): whoever reads the account, its tenant on the portal included.
    ("prepaid.account", "action_view_ledger"): (*OPS, "portal"),
    ("prepaid.account", "action_view_meters"): (*OPS, "portal"),
    ("prepaid.account", "action_view_pending_commands"): OPS,
    ("prepaid.account", "action_view_topups"): (*OPS, "portal"),
    ("prepaid.account", "create"): OPS,
    ("prepaid.account", "write"): OPS,
    ("prepaid.ledger", "create"): NOBODY,
    ("prepaid.ledger", "write"): NOBODY,
    ("prepaid.gateway", "action_read_now"): MGR,
    ("prepaid.gateway", "action_test_connection"): MGR,
    ("prepaid.gateway", "action_view_comm_log"): OPS,
    ("prepaid.gateway", "action_view_meters"): OPS,
    ("prepaid.gateway", "action_view_readings"): OPS,
    ("prepaid.gateway", "create"): MGR,
    ("prepaid.meter", "action_trip"): OPS,
    ("prepaid.meter", "action_close"): OPS,
    ("prepaid.meter", "action_keep_power_on"): OPS,
    ("prepaid.meter", "action_keep_power_off"): OPS,
    ("prepaid.meter", "action_valve_open"): OPS,
    ("prepaid.meter", "action_valve_close"): OPS,
    ("prepaid.meter", "action_read_now"): OPS,
    ("prepaid.meter", "action_settle_now"): OPS,
    ("prepaid.meter", "action_view_comm_log"): OPS,
    ("prepaid.meter", "action_view_commands"): OPS,
    ("prepaid.meter", "action_view_readings"): OPS,
    ("prepaid.meter", "action_view_replacements"): OPS,
    ("prepaid.meter", "action_ask_again"): MGR,  # what the poller asks a meter for
    ("prepaid.meter", "get_import_templates"): (*OPS, "accountant", "portal", "public"),
    ("prepaid.meter", "create"): MGR,
    ("prepaid.meter", "write"): OPS,  # operators: the name only (see the protected writes)
    ("prepaid.meter.command", "action_cancel"): OPS,
    ("prepaid.meter.command", "action_retry"): OPS,
    ("prepaid.meter.command", "create"): NOBODY,
    ("prepaid.meter.command", "write"): NOBODY,
    ("prepaid.meter.model", "action_view_meters"): OPS,
    ("prepaid.meter.reading", "create"): MGR,
    ("prepaid.platform", "action_regenerate_route_key"): MGR,
    ("prepaid.platform", "action_view_messages"): OPS,
    ("prepaid.platform", "action_view_meters"): OPS,
    ("prepaid.property", "action_view_accounts"): OPS,
    ("prepaid.property", "action_view_children"): OPS,
    ("prepaid.property", "action_view_meters"): OPS,
    ("prepaid.property", "action_view_tenancies"): OPS,
    ("prepaid.property", "create"): OPS,
    ("prepaid.property", "write"): OPS,
    ("prepaid.tenancy", "action_activate"): OPS,
    ("prepaid.tenancy", "action_cancel"): OPS,
    ("prepaid.tenancy", "action_create_account"): OPS,
    ("prepaid.tenancy", "action_draft"): OPS,
    ("prepaid.tenancy", "action_end"): OPS,
    ("prepaid.tenancy", "create"): OPS,
    ("prepaid.tenancy", "write"): OPS,
    ("prepaid.topup", "action_print_receipt"): (*OPS, "accountant"),
    ("prepaid.topup", "action_print_ticket"): (*OPS, "accountant"),
    ("prepaid.topup", "action_print_a4"): (*OPS, "accountant"),
    ("prepaid.anomaly", "action_acknowledge"): MGR,
    ("prepaid.anomaly", "action_accept"): MGR,
    ("prepaid.anomaly", "action_reject"): MGR,
    ("prepaid.anomaly", "action_view_readings"): OPS,
    ("prepaid.anomaly", "create"): NOBODY,
    ("prepaid.anomaly", "write"): MGR,  # the assignee and the note; the rest is the checks' and the buttons'
    ("prepaid.meter.reading", "write"): NOBODY,
    ("prepaid.consumption", "action_backfill"): MGR,
    ("prepaid.topup", "action_view_invoice"): (*OPS, "accountant"),
    ("prepaid.topup", "create"): NOBODY,
    ("prepaid.topup", "write"): NOBODY,
    ("prepaid.topup.wizard", "action_confirm"): OPS,
    ("prepaid.reverse.wizard", "action_reverse"): MGR,
    ("prepaid.temporary.supply.wizard", "action_start"): MGR,
    ("prepaid.temporary.supply.wizard", "create"): MGR,
    ("prepaid.temporary.supply.wizard", "write"): MGR,
    ("prepaid.meter", "action_reset_for_reuse"): MGR,
    ("prepaid.refund.wizard", "action_refund_and_close"): MGR,
    ("prepaid.sitemap.import", "action_import"): MGR,
    ("prepaid.sitemap.import", "action_view_gateways"): MGR,
    ("prepaid.summary", "action_post_now"): MGR,
    ("prepaid.summary", "action_view_move"): (*OPS, "accountant"),
    ("prepaid.apportionment.rule", "action_create_bills"): MGR,
    ("prepaid.apportionment.rule", "action_view_bills"): OPS,
    ("prepaid.apportionment.bill", "action_recompute"): MGR,
    ("prepaid.apportionment.bill", "action_dispatch"): MGR,
    ("prepaid.apportionment.bill", "action_cancel"): MGR,
    ("prepaid.apportionment.bill", "action_view_invoices"): OPS,
    ("prepaid.apportionment.bill", "create"): NOBODY,
    # The manual cost (draft) and the note; the rest is computed.
    ("prepaid.apportionment.bill", "write"): MGR,
    ("prepaid.apportionment.bill.line", "create"): NOBODY,
    ("prepaid.apportionment.bill.line", "write"): NOBODY,
    ("prepaid.meter", "action_view_apportionment_rules"): OPS,
    ("prepaid.property", "action_view_apportionment_rules"): OPS,
    # The monthly ledger: managers generate, review, reset and check; whoever reads it exports and prints.
    ("prepaid.monthly.ledger", "action_review"): MGR,
    ("prepaid.monthly.ledger", "action_refresh"): MGR,
    ("prepaid.monthly.ledger", "action_reset_to_draft"): MGR,
    ("prepaid.monthly.ledger", "action_check_changes"): MGR,
    ("prepaid.monthly.ledger", "action_export_xlsx"): ("op_all", "manager"),
    ("prepaid.monthly.ledger", "action_print"): ("op_all", "manager"),
    ("prepaid.monthly.ledger", "create"): NOBODY,
    ("prepaid.monthly.ledger", "write"): MGR,  # the note; the figures and states are the ledger's own
    ("prepaid.monthly.ledger.line", "create"): NOBODY,
    ("prepaid.monthly.ledger.line", "write"): NOBODY,
    ("prepaid.monthly.ledger.wizard", "action_generate"): MGR,
    # Statements are computed: nobody creates or writes them; managers dispatch them (the fixture is
    # dispatched already: a second dispatch sends nothing); staff refresh the unsettled ones.
    ("prepaid.account", "action_view_statements"): (*OPS, "portal"),  # navigation: no data
    ("prepaid.statement", "action_dispatch"): MGR,
    ("prepaid.statement", "action_refresh"): OPS,
    ("prepaid.statement", "action_print"): (*OPS, "accountant"),
    ("prepaid.statement", "action_view_ledger"): (*OPS, "accountant"),
    ("prepaid.statement", "create"): NOBODY,
    ("prepaid.statement", "write"): NOBODY,
    ("prepaid.statement.line", "action_view_ledger"): (*OPS, "accountant"),
    ("prepaid.statement.line", "create"): NOBODY,
    ("prepaid.statement.line", "write"): NOBODY,
    # Fees: managers charge now (what the hourly run does); charges are the run's own.
    ("prepaid.fee.item", "create"): MGR,
    ("prepaid.fee.item", "write"): MGR,
    ("prepaid.fee.item", "action_charge_now"): MGR,
    ("prepaid.fee.item", "action_view_charges"): OPS,
    ("prepaid.fee.charge", "action_view_ledger"): (*OPS, "accountant"),
    ("prepaid.fee.charge", "action_view_invoice"): (*OPS, "accountant"),
    ("prepaid.fee.charge", "create"): NOBODY,
    ("prepaid.fee.charge", "write"): NOBODY,
    # issue 13: batch operations
    ("prepaid.batch.operation", "create"): MGR,
    ("prepaid.batch.operation", "write"): MGR,
    ("prepaid.batch.operation", "action_run"): MGR,
    ("prepaid.batch.operation", "action_schedule"): MGR,
    ("prepaid.batch.operation", "action_cancel"): MGR,
    ("prepaid.batch.operation", "action_retry_failed"): MGR,
    ("prepaid.batch.operation", "action_refresh"): OPS,
    ("prepaid.batch.operation", "action_preview_targets"): OPS,  # navigation: the meters they read
    ("prepaid.batch.operation", "action_view_lines"): OPS,
    ("prepaid.batch.operation", "action_view_commands"): OPS,
    ("prepaid.batch.operation.line", "create"): NOBODY,
    ("prepaid.batch.operation.line", "write"): NOBODY,
    # issue 13: account opening
    ("prepaid.account.opening", "create"): MGR,
    ("prepaid.account.opening", "write"): MGR,
    ("prepaid.account.opening", "action_ready"): MGR,
    ("prepaid.account.opening", "action_cancel"): MGR,
    ("prepaid.account.opening", "action_draft"): MGR,
    ("prepaid.account.opening", "action_open_accounts"): MGR,
    ("prepaid.meter", "action_start_temporary_supply"): MGR,
    ("prepaid.account.opening", "get_import_templates"): (*OPS, "accountant", "portal", "public"),
    # issue 13: reports
    ("prepaid.shift.report.wizard", "action_print"): (*OPS, "accountant"),
    ("prepaid.shift.report.wizard", "action_export_xlsx"): (*OPS, "accountant"),
    ("prepaid.report.export.wizard", "action_export_xlsx"): (*OPS, "accountant"),
    # The dashboard reads the reports as the caller: whoever reads them.
    ("prepaid.report.dashboard", "get_dashboard_data"): (*OPS, "accountant"),
    # issue 13: anomalies and reconciliation
    ("prepaid.anomaly", "action_resolve"): MGR,
}
# Methods that hold by themselves and need no record (called on the empty recordset).
MODEL_METHODS = {"get_import_templates", "create", "action_post_now", "get_dashboard_data"}
# Methods of a list's header button (called on the empty recordset).
EMPTY_RECORDSET_METHODS = {"action_backfill"}

# The tenant portal (prepaid_portal), when installed: its models, its methods, and what it opens to portal
# users (read-only, their own accounts' records). The suite's addons are installed together; rows of an addon
# that is not installed are left out.
PORTAL_ADDON_CRUD = {
    "prepaid.portal.binding": {"op_one": "r", "op_all": "r", "manager": "r"},
    "prepaid.portal.invitation": {"op_one": "r", "op_all": "r", "manager": "r"},
    "prepaid.portal.attempt": {"op_one": "r", "op_all": "r", "manager": "r"},
    "prepaid.meter": {**CRUD["prepaid.meter"], "portal": "r"},
    "prepaid.topup": {**CRUD["prepaid.topup"], "portal": "r"},
    "prepaid.consumption": {**CRUD["prepaid.consumption"], "portal": "r"},
    "prepaid.statement": {**CRUD["prepaid.statement"], "portal": "r"},  # dispatched ones
}
PORTAL_ADDON_METHODS = {
    ("prepaid.account", "action_generate_portal_code"): OPS,
    ("prepaid.account", "action_print_portal_label"): OPS,
    ("prepaid.account", "action_view_portal_bindings"): (*OPS, "portal"),  # navigation: no data
    ("prepaid.portal.binding", "action_revoke"): OPS,
    ("prepaid.portal.binding", "create"): NOBODY,
    ("prepaid.portal.binding", "write"): NOBODY,
    ("prepaid.portal.invitation", "create"): NOBODY,
    ("prepaid.portal.invitation", "write"): NOBODY,
    # Navigation to what the tenant reads anyway (a window action, no data). The receipts' report actions stay
    # the staff's: the portal serves the tenant's receipts by its own route.
    ("prepaid.topup", "action_view_invoice"): (*OPS, "accountant", "portal"),
    ("prepaid.meter", "action_view_comm_log"): (*OPS, "portal"),
    ("prepaid.meter", "action_view_commands"): (*OPS, "portal"),
    ("prepaid.meter", "action_view_readings"): (*OPS, "portal"),
    ("prepaid.meter", "action_view_replacements"): (*OPS, "portal"),
    ("prepaid.meter", "action_view_apportionment_rules"): (*OPS, "portal"),
    ("prepaid.statement", "action_view_ledger"): (*OPS, "accountant", "portal"),  # navigation: no data
}
PORTAL_ADDON_PROTECTED = {
    "prepaid.account": [
        {"portal_code": "12345678"},
        {"portal_code_locked": False},
        {"portal_code_failures": 0},
    ],
    "prepaid.portal.binding": [{"state": "active"}, {"user_id": 1}, {"role": "holder"}, {"account_id": 1}],
}

# Load control (prepaid_load_control), when installed.
LOAD_ADDON_CRUD = {
    "prepaid.appliance": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.load.profile": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.load.profile.range": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.load.event": {"op_one": "r", "op_all": "r", "manager": "r"},  # recorded by load control
    "prepaid.load.restore.wizard": {"manager": "rwc"},
    "prepaid.load.learn.wizard": {"manager": "rwc"},
    "prepaid.time.schedule": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.time.schedule.window": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
    "prepaid.time.schedule.holiday": {"op_one": "r", "op_all": "r", "manager": "rwcu"},
}
LOAD_ADDON_METHODS = {
    ("prepaid.meter", "action_load_restore"): MGR,
    ("prepaid.meter", "action_view_load_events"): OPS,
    ("prepaid.load.event", "action_restore"): MGR,
    ("prepaid.load.event", "create"): NOBODY,
    ("prepaid.load.event", "write"): NOBODY,
    ("prepaid.load.restore.wizard", "action_restore"): MGR,
    ("prepaid.meter", "action_load_learn_start"): MGR,
    ("prepaid.meter", "action_load_learn_finish"): MGR,
    ("prepaid.meter", "action_load_learn_cancel"): MGR,
    ("prepaid.load.learn.wizard", "action_learn"): MGR,
    ("prepaid.appliance", "create"): MGR,
    ("prepaid.appliance", "write"): MGR,
    ("prepaid.load.profile", "create"): MGR,
    ("prepaid.load.profile", "write"): MGR,
    ("prepaid.load.profile.range", "create"): MGR,
    ("prepaid.load.profile.range", "write"): MGR,
    ("prepaid.time.schedule.window", "create"): MGR,
    ("prepaid.time.schedule.window", "write"): MGR,
    ("prepaid.time.schedule", "create"): MGR,
    ("prepaid.time.schedule", "write"): MGR,
    ("prepaid.load.profile", "action_apply_to_meters"): MGR,
}
LOAD_ADDON_PROTECTED = {
    "prepaid.meter": [
        {"load_state": "locked"},
        {"load_restore_at": "2026-01-01 00:00:00"},
        {"load_learning_since": "2026-01-01 00:00:00"},
        {"time_control_off": True},
        {"load_trip_reason": "malicious_load"},
        {"load_meter_event_count": 9},
    ],
    "prepaid.time.schedule": [{"last_run_at": "2026-01-01 00:00:00"}, {"last_command_count": 9}],
    "prepaid.load.event": [{"action": "none"}, {"restore": "restored"}, {"meter_id": 1}],
}

# Context keys an RPC caller may send, hoping to switch a check off.
HOSTILE_CONTEXT = {
    "prepaid_account_internal_write": True,
    "prepaid_ledger_post": True,
    "prepaid_internal": True,
    "tracking_disable": True,
    "active_test": False,
    "install_mode": True,
    "mail_notrack": True,
}

# Writes nobody may make through RPC, whatever the group: protected state has one door.
PROTECTED_WRITES = {
    "prepaid.account": [
        {"balance": 5000.0},
        {"period": 9},
        {"last_topup_date": "2026-01-01 00:00:00"},
        {"state": "closed"},
        {"state": "draft"},
        {"level": "normal"},
        {"alert_level": "cutoff"},
        {"supply_cut": False},
    ],
    "prepaid.meter": [{"supply": "on"}, {"online": True}, {"purchase_count": 99}, {"last_total": 1.0}],
    "prepaid.meter.command": [
        {"state": "done"},
        {"kind": "close"},
        {"amount": 1000.0},
        {"load_parameters": '{"power_limit": "99"}'},
    ],
    "prepaid.topup": [{"state": "done"}, {"amount": 1.0}],
    "prepaid.ledger": [{"amount": 1000.0}],
    "prepaid.anomaly": [{"state": "resolved"}, {"resolution": "accepted"}, {"meter_id": 1}],
    "prepaid.apportionment.bill": [{"state": "dispatched"}, {"cost": 1.0}, {"allocated": 1.0}],
    "prepaid.apportionment.bill.line": [{"amount": 1.0}, {"state": "posted"}, {"account_id": 1}],
    "prepaid.monthly.ledger": [
        {"state": "reviewed"},
        {"total": 1.0},
        {"fees": 1.0},
        {"reviewer_id": 1},
        {"changed_since_review": False},
    ],
    "prepaid.monthly.ledger.line": [{"fees": 1.0}, {"total": 1.0}, {"electricity_quantity": 1.0}],
    "prepaid.statement": [{"state": "settled"}, {"closing_balance": 0.0}, {"account_id": 1}],
    "prepaid.fee.charge": [{"amount": 0.01}, {"state": "nothing"}, {"ledger_id": False}, {"account_id": 1}],
    # issue 13: batch operations
    "prepaid.batch.operation": [{"state": "done"}, {"run_by": 1}, {"run_at": "2026-01-01 00:00:00"}],
    "prepaid.batch.operation.line": [{"state": "done"}, {"error": "x"}, {"topup_id": False}, {"meter_id": 1}],
    # issue 13: account opening
    "prepaid.account.opening": [{"state": "opened"}, {"account_id": 1}, {"topup_id": False}],
}
# Writes for managers only (operators are refused even inside their scope).
MANAGER_WRITES = {
    "prepaid.account": [{"warn_level_1": 99.0}, {"keep_power": True}, {"overdraft_limit": 5.0}],
    "prepaid.meter": [
        {"ct_ratio": 40},
        {"billing_mode": "meter"},
        {"address": "999999999999"},
        {"active": False},
        {"is_common": True},
    ],
    # issue 13: the building's anomaly manager (with load control installed too: its extension keeps it)
    "prepaid.property": [{"settlement_day": 5}, {"anomaly_manager_id": 2}],
    "prepaid.apportionment.bill": [{"manual_cost": 5.0}],
}


@tagged("post_install", "-at_install")
class TestAuthorisationMatrix(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=False))
        env = cls.env
        company_vals = {"company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)]}
        cls.users = {
            "op_one": new_test_user(
                env,
                login="mx_op_one",
                groups="prepaid_base.group_prepaid_user",
                prepaid_property_ids=[Command.set(cls.floor.ids)],
                **company_vals,
            ),
            "op_all": new_test_user(
                env, login="mx_op_all", groups="prepaid_base.group_prepaid_user", **company_vals
            ),
            "manager": new_test_user(
                env, login="mx_manager", groups="prepaid_base.group_prepaid_manager", **company_vals
            ),
            "accountant": new_test_user(
                env, login="mx_accountant", groups="account.group_account_manager", **company_vals
            ),
            "portal": new_test_user(env, login="mx_portal", groups="base.group_portal", **company_vals),
            "public": env.ref("base.public_user"),
        }
        cls.users["public"].sudo().company_ids |= cls.company
        cls.crud, cls.methods, cls.protected = dict(CRUD), dict(METHODS), dict(PROTECTED_WRITES)
        cls.has_portal = "prepaid.portal.binding" in env.registry
        if cls.has_portal:
            cls.crud.update(PORTAL_ADDON_CRUD)
            cls.methods.update(PORTAL_ADDON_METHODS)
            for model, writes in PORTAL_ADDON_PROTECTED.items():
                cls.protected[model] = [*cls.protected.get(model, []), *writes]
        cls.has_load_control = "prepaid.load.event" in env.registry
        if cls.has_load_control:
            cls.crud.update(LOAD_ADDON_CRUD)
            cls.methods.update(LOAD_ADDON_METHODS)
            for model, writes in LOAD_ADDON_PROTECTED.items():
                cls.protected[model] = [*cls.protected.get(model, []), *writes]
        cls.account_1.portal_partner_ids = [Command.link(cls.users["portal"].partner_id.id)]
        cls.post(cls, cls.account_1, 100.0, "mx:opening", kind="opening")
        cls.gateway = env["prepaid.gateway"].create(
            {
                "name": "MX gateway",
                "code": "MX-GW",
                "host": "127.0.0.1",
                "timeout": 0.05,
                "connect_timeout": 0.05,
                "property_id": cls.building.id,
                "bus_ids": [Command.create({"name": "1", "port": 9, "baud": 9600})],
            }
        )
        cls.meter_gw = cls._create_meter(
            cls.unit_1,
            "MX-E-1",
            model=env.ref("prepaid_metering.meter_model_dlt645_2007_prepaid"),
            address="000000009901",
            bus_id=cls.gateway.bus_ids.id,
        )
        cls.command = env["prepaid.meter.command"]._enqueue([{"meter_id": cls.meter_gw.id, "kind": "trip"}])
        # issue 13: a draft batch over op_one's floor and one result line of it
        cls.batch = env["prepaid.batch.operation"].create(
            {"kind": "keep_power_on", "property_ids": [Command.set(cls.floor.ids)]}
        )
        cls.batch_line = (
            internal(env["prepaid.batch.operation.line"])
            .sudo()
            .create(
                [{"operation_id": cls.batch.id, "company_id": cls.company.id, "account_id": cls.account_1.id}]
            )
        )
        T0 = datetime(2026, 3, 1, tzinfo=UTC)
        env["prepaid.meter.reading"]._ingest([Reading(str(cls.meter_1.id), T0, total=Decimal(10))])
        env["prepaid.meter.reading"]._ingest(
            [Reading(str(cls.meter_1.id), T0 + timedelta(minutes=15), total=Decimal(11))]
        )
        cls.reading = env["prepaid.meter.reading"].search([("meter_id", "=", cls.meter_1.id)], limit=1)
        # A reading no meter can show (a million kWh in a quarter-hour): quarantined, an anomaly raised.
        env["prepaid.meter.reading"]._ingest(
            [Reading(str(cls.meter_1.id), T0 + timedelta(minutes=30), total=Decimal(1_000_000))]
        )
        cls.anomaly = env["prepaid.anomaly"].sudo().search([("meter_id", "=", cls.meter_1.id)], limit=1)
        cls.cursor = env["prepaid.settlement.cursor"].search([("meter_id", "=", cls.meter_1.id)], limit=1)
        cls.comm_log = (
            env["prepaid.comm.log"]
            .sudo()
            .create(
                [
                    {
                        "meter_id": cls.meter_gw.id,
                        "gateway_id": cls.gateway.id,
                        "direction": "error",
                        "message": "x",
                    }
                ]
            )
        )
        cls.platform = env["prepaid.platform"].create({"name": "MX platform", "token": "t0ken"})
        cls.push_message = (
            env["prepaid.push.message"]
            .sudo()
            .create([{"platform_id": cls.platform.id, "message_id": "mx-1", "meter_id": cls.meter_1.id}])
        )
        cls.replacement = env["prepaid.meter.replacement"].create(
            [{"meter_id": cls.meter_1.id, "old_final": 11.0, "new_initial": 0.0}]
        )
        cls.topup_record = cls.topup(cls, cls.account_1, 10.0)
        cls.env["prepaid.summary"].sudo()._post_company_summaries(
            cls.company, until=datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
        )
        cls.summary = env["prepaid.summary"].search([("company_id", "=", cls.company.id)], limit=1)
        cls.tenancy = env["prepaid.tenancy"].create(
            {
                "partner_id": cls.tenant_1.id,
                "unit_ids": [Command.set(cls.unit_1.ids)],
                "account_id": cls.account_1.id,
            }
        )
        cls.fee_item = env["prepaid.fee.item"].create({"name": "MX fee"})
        fee_tenancy = env["prepaid.tenancy"].create(
            {
                "partner_id": cls.tenant_2.id,
                "unit_ids": [Command.set(cls.unit_2.ids)],
                "account_id": cls.account_2.id,
            }
        )
        fee_tenancy.action_activate()
        fee_charged = env["prepaid.fee.item"].create(
            {"name": "MX fee charged", "amount": 1.0, "tenancy_ids": [Command.set(fee_tenancy.ids)]}
        )
        env["prepaid.fee.charge"]._charge_fees(items=fee_charged)
        cls.fee_charge = fee_charged.charge_ids
        cls.tier = cls.tariff_water.tier_ids[:1]
        cls.period = env["prepaid.tariff.period"].create(
            {"tariff_id": cls.tariff_flat.id, "start": 0.0, "band": "flat"}
        )
        cls.appt_rule = env["prepaid.apportionment.rule"].create(
            {
                "name": "MX lifts",
                "property_id": cls.building.id,
                "unit_ids": [Command.set(cls.unit_1.ids)],
                "source": "fixed",
                "fixed_amount": 5.0,
                "line_ids": [Command.create({"unit_id": cls.unit_1.id, "fixed_amount": 4.0})],
            }
        )
        cls.appt_bill = env["prepaid.apportionment.bill"]._create_for(
            cls.appt_rule, [(datetime(2026, 2, 28, 16), datetime(2026, 3, 31, 16))]
        )
        env["prepaid.statement"]._generate_all()
        cls.statement = env["prepaid.statement"].search([("account_id", "=", cls.account_1.id)], limit=1)
        internal(cls.statement.sudo()).write({"state": "dispatched"})
        cls.load_records = {}
        if cls.has_load_control:
            profile = env["prepaid.load.profile"].create(
                {
                    "name": "MX load",
                    "range_ids": [Command.create({"low_w": 300, "high_w": 6000})],
                    "property_ids": [Command.set(cls.floor.ids)],
                }
            )
            cls.load_records = {
                "prepaid.appliance": env["prepaid.appliance"].search([("code", "=", "kettle")]),
                "prepaid.load.profile": profile,
                "prepaid.load.profile.range": profile.range_ids,
                "prepaid.load.event": internal(env["prepaid.load.event"].sudo()).create(
                    {
                        "meter_id": cls.meter_1.id,
                        "unit_id": cls.unit_1.id,
                        "building_id": cls.building.id,
                        "company_id": cls.company.id,
                        "at": "2026-03-02 02:00:00",
                        "classification": "malicious",
                        "action": "alarm",
                    }
                ),
                "prepaid.load.restore.wizard": env["prepaid.load.restore.wizard"].create(
                    {"meter_id": cls.meter_1.id, "reason": "mx"}
                ),
                "prepaid.load.learn.wizard": env["prepaid.load.learn.wizard"].create(
                    {"meter_id": cls.meter_1.id, "name": "mx"}
                ),
            }
            schedule = env["prepaid.time.schedule"].create(
                {
                    "name": "MX lights-out",
                    "property_ids": [Command.set(cls.floor.ids)],
                    "window_ids": [Command.create({"start": 23.5, "end": 6.0, "supply": "off"})],
                    "holiday_ids": [Command.create({"date": "2026-03-05", "name": "mx"})],
                }
            )
            cls.load_records.update(
                {
                    "prepaid.time.schedule": schedule,
                    "prepaid.time.schedule.window": schedule.window_ids[:1],
                    "prepaid.time.schedule.holiday": schedule.holiday_ids[:1],
                }
            )
        cls.portal_records = {}
        if cls.has_portal:
            binding = env["prepaid.portal.binding"]._bind(
                cls.account_1.sudo(), cls.users["portal"], "holder", "staff"
            )
            cls.portal_records = {
                "prepaid.portal.binding": binding,
                "prepaid.portal.invitation": env["prepaid.portal.invitation"]._invite(
                    cls.account_1, cls.users["portal"]
                ),
                "prepaid.portal.attempt": env["prepaid.portal.attempt"]
                .sudo()
                .create(
                    [
                        {
                            "user_id": cls.users["portal"].id,
                            "account_number": "x",
                            "account_id": cls.account_1.id,
                        }
                    ]
                ),
            }
        cls.wizards = {
            "prepaid.topup.wizard": env["prepaid.topup.wizard"].create(
                {"account_id": cls.account_1.id, "amount": 1.0, "journal_id": cls.cash_journal.id}
            ),
            "prepaid.reverse.wizard": env["prepaid.reverse.wizard"].create(
                {"account_id": cls.account_1.id, "reason": "mx"}
            ),
            "prepaid.refund.wizard": env["prepaid.refund.wizard"].create(
                {"account_id": cls.account_1.id, "reason": "mx"}
            ),
            "prepaid.sitemap.import": env["prepaid.sitemap.import"].create({}),
            "prepaid.monthly.ledger.wizard": env["prepaid.monthly.ledger.wizard"].create({}),
            # issue 13: reports
            "prepaid.shift.report.wizard": env["prepaid.shift.report.wizard"].create({}),
            "prepaid.report.export.wizard": env["prepaid.report.export.wizard"].create({}),
            "prepaid.temporary.supply.wizard": env["prepaid.temporary.supply.wizard"].create(
                {"meter_ids": [(6, 0, cls.meter_1.ids)]}
            ),
        }
        cls.monthly_ledger = env["prepaid.monthly.ledger"]._generate(cls.building, 2026, 3)

    # ------------------------------------------------------------------ fixtures per model

    def record_of(self, model):
        """A record of ``model`` inside ``op_one``'s floor."""
        records = {
            "prepaid.property": self.unit_1,
            "prepaid.tenancy": self.tenancy,
            "prepaid.account": self.account_1,
            "prepaid.ledger": self.account_1.ledger_ids[:1],
            "prepaid.tariff": self.tariff_flat,
            "prepaid.tariff.period": self.period,
            "prepaid.tariff.tier": self.tier,
            "prepaid.fee.item": self.fee_item,
            "prepaid.gateway": self.gateway,
            "prepaid.gateway.bus": self.gateway.bus_ids,
            "prepaid.meter.model": self.meter_1.model_id,
            "prepaid.meter": self.meter_gw,
            "prepaid.meter.reading": self.reading,
            "prepaid.meter.command": self.command,
            "prepaid.comm.log": self.comm_log,
            "prepaid.platform": self.platform,
            "prepaid.push.message": self.push_message,
            "prepaid.topup": self.topup_record,
            "prepaid.settlement.cursor": self.cursor,
            "prepaid.meter.replacement": self.replacement,
            "prepaid.summary": self.summary,
            "prepaid.anomaly": self.anomaly,
            "prepaid.consumption": self.env["prepaid.consumption"].search(
                [("meter_id", "=", self.meter_1.id)], limit=1
            ),
            "prepaid.apportionment.rule": self.appt_rule,
            "prepaid.apportionment.rule.line": self.appt_rule.line_ids,
            "prepaid.apportionment.bill": self.appt_bill,
            "prepaid.apportionment.bill.line": self.appt_bill.line_ids,
            "prepaid.monthly.ledger": self.monthly_ledger,
            "prepaid.monthly.ledger.line": self.monthly_ledger.line_ids[:1],
            "prepaid.statement": self.statement,
            "prepaid.statement.line": self.statement.line_ids[:1],
            "prepaid.fee.charge": self.fee_charge,
            "prepaid.batch.operation": self.batch,
            "prepaid.batch.operation.line": self.batch_line,
            # issue 13: account opening
            "prepaid.account.opening": self.env["prepaid.account.opening"].create(
                {"partner_id": self.tenant_2.id, "unit_id": self.unit_1.id}
            ),
            # issue 13: reports
            "prepaid.order.report": self.env["prepaid.order.report"].search(
                [("account_id", "=", self.account_1.id)], limit=1
            ),
            "prepaid.consumption.report": self.env["prepaid.consumption.report"].search(
                [("meter_id", "=", self.meter_1.id)], limit=1
            ),
            **self.wizards,
            **self.portal_records,
            **self.load_records,
        }
        record = records[model]
        self.assertTrue(record, f"no fixture record of {model}")
        return record

    def harmless_write(self, model):
        return {
            "prepaid.property": {"area": 41.0},
            "prepaid.tenancy": {"note": "<p>mx</p>"},
            "prepaid.account": {"note": "<p>mx</p>"},
            "prepaid.ledger": {"description": "mx"},
            "prepaid.tariff": {"name": "Flat renamed"},
            "prepaid.tariff.period": {"start": 1.0},
            "prepaid.tariff.tier": {"price": 3.6},
            "prepaid.fee.item": {"name": "MX fee renamed"},
            "prepaid.gateway": {"name": "MX renamed"},
            "prepaid.gateway.bus": {"name": "2"},
            "prepaid.meter.model": {"name": "Renamed model"},
            "prepaid.meter": {"name": "MX-E-1 renamed"},
            "prepaid.meter.reading": {"voltage": 220.0},
            "prepaid.meter.command": {"origin": "mx"},
            "prepaid.comm.log": {"message": "mx"},
            "prepaid.platform": {"name": "MX renamed"},
            "prepaid.push.message": {"message": "mx"},
            "prepaid.topup": {"memo": "mx"},
            "prepaid.settlement.cursor": {"last_error": "mx"},
            "prepaid.meter.replacement": {"note": "mx"},
            "prepaid.summary": {"line_count": 0},
            "prepaid.anomaly": {"note": "mx"},
            "prepaid.consumption": {"quantity": 1000.0},
            "prepaid.apportionment.rule": {"name": "MX lifts renamed"},
            "prepaid.apportionment.rule.line": {"fixed_amount": 3.0},
            "prepaid.apportionment.bill": {"note": "mx"},
            "prepaid.apportionment.bill.line": {"ratio": 0.5},
            "prepaid.monthly.ledger": {"note": "mx"},
            "prepaid.monthly.ledger.line": {"unit_names": "mx"},
            "prepaid.monthly.ledger.wizard": {"month": "2026-02-01"},
            "prepaid.shift.report.wizard": {"date_from": "2026-01-01"},
            "prepaid.report.export.wizard": {"report": "income"},
            "prepaid.statement": {"closing_balance": 1000.0},
            "prepaid.statement.line": {"amount": 1000.0},
            "prepaid.fee.charge": {"name": "mx"},
            "prepaid.batch.operation": {"scheduled_at": "2030-01-01 00:00:00"},
            "prepaid.batch.operation.line": {"error": "mx"},
            "prepaid.account.opening": {"auto_open": True},  # issue 13: account opening
            # issue 13: reports
            "prepaid.order.report": {"amount": 1.0},
            "prepaid.consumption.report": {"quantity": 1.0},
            "prepaid.topup.wizard": {"memo": "mx"},
            "prepaid.reverse.wizard": {"reason": "mx2"},
            "prepaid.temporary.supply.wizard": {"quantity": 5.0},
            "prepaid.refund.wizard": {"reason": "mx2"},
            "prepaid.sitemap.import": {"site_text": "{}"},
            "prepaid.portal.binding": {"revoked_date": "2026-01-01 00:00:00"},
            "prepaid.portal.invitation": {"expires": "2030-01-01 00:00:00"},
            "prepaid.portal.attempt": {"success": True},
            "prepaid.appliance": {"note": "mx"},
            "prepaid.load.profile": {"note": "mx"},
            "prepaid.load.profile.range": {"high_w": 5000},
            "prepaid.load.event": {"restore_reason": "mx"},
            "prepaid.load.restore.wizard": {"reason": "mx2"},
            "prepaid.load.learn.wizard": {"name": "mx2"},
            "prepaid.time.schedule": {"note": "mx"},
            "prepaid.time.schedule.window": {"end": 6.5},
            "prepaid.time.schedule.holiday": {"name": "mx2"},
        }[model]

    def create_vals(self, model):
        unit = self.unit_2
        return {
            "prepaid.property": {"name": "MX-103", "kind": "unit", "parent_id": self.floor.id},
            "prepaid.tenancy": {"partner_id": self.tenant_2.id, "unit_ids": [Command.set(unit.ids)]},
            "prepaid.account": {"partner_id": self.tenant_2.id, "unit_ids": [Command.set(unit.ids)]},
            "prepaid.ledger": {
                "account_id": self.account_1.id,
                "kind": "topup",
                "amount": 5000.0,
                "idempotency_key": "mx:forged",
            },
            "prepaid.tariff": {"name": "MX", "utility": "electricity", "kind": "flat", "price": 0.1},
            "prepaid.tariff.period": {"tariff_id": self.tariff_flat.id, "start": 12.0, "band": "flat"},
            "prepaid.tariff.tier": {"tariff_id": self.tariff_water.id, "threshold": 99.0, "price": 9.0},
            "prepaid.fee.item": {"name": "MX new fee"},
            "prepaid.gateway": {"name": "MX2", "code": "MX2", "host": "127.0.0.1"},
            "prepaid.gateway.bus": {"gateway_id": self.gateway.id, "name": "3", "port": 10},
            "prepaid.meter.model": {
                "name": "MX model",
                "code": "mx_model",
                "protocol": "dlt645_2007",
                "utility": "electricity",
            },
            "prepaid.meter": {"name": "MX new", "model_id": self.meter_1.model_id.id, "unit_id": unit.id},
            "prepaid.meter.reading": {
                "meter_id": self.meter_1.id,
                "read_at": "2026-03-02 00:00:00",
                "total": 12.0,
            },
            "prepaid.meter.command": {"meter_id": self.meter_gw.id, "kind": "close"},
            "prepaid.comm.log": {"meter_id": self.meter_gw.id, "direction": "error"},
            "prepaid.platform": {"name": "MX2 platform"},
            "prepaid.push.message": {"platform_id": self.platform.id, "message_id": "mx-2"},
            "prepaid.topup": {"account_id": self.account_1.id, "amount": 5000.0, "state": "done"},
            "prepaid.settlement.cursor": {"meter_id": self.meter_2.id},
            "prepaid.meter.replacement": {"meter_id": self.meter_2.id, "old_final": 1.0, "new_initial": 0.0},
            "prepaid.summary": {"company_id": self.company.id, "day": "2026-03-01", "move_id": 1},
            "prepaid.anomaly": {"meter_id": self.meter_1.id, "kind": "implausible_reading"},
            "prepaid.consumption": {
                "meter_id": self.meter_1.id,
                "day": "2026-03-01",
                "company_id": self.company.id,
            },
            "prepaid.apportionment.rule": {"name": "MX new rule", "property_id": self.building.id},
            "prepaid.apportionment.rule.line": {"rule_id": self.appt_rule.id, "unit_id": self.unit_2.id},
            "prepaid.apportionment.bill": {
                "name": "MX forged",
                "rule_id": self.appt_rule.id,
                "company_id": self.company.id,
                "period_start": "2026-05-01 00:00:00",
                "period_end": "2026-06-01 00:00:00",
            },
            "prepaid.apportionment.bill.line": {"bill_id": self.appt_bill.id, "unit_id": self.unit_2.id},
            "prepaid.statement": {
                "name": "forged",
                "account_id": self.account_1.id,
                "company_id": self.company.id,
                "cycle_start": "2030-01-01 00:00:00",
                "cycle_end": "2030-02-01 00:00:00",
            },
            "prepaid.statement.line": {"statement_id": self.statement.id, "kind": "topup", "amount": 1000.0},
            "prepaid.fee.charge": {
                "name": "forged",
                "fee_item_id": self.fee_item.id,
                "tenancy_id": self.tenancy.id,
                "partner_id": self.tenant_1.id,
                "company_id": self.company.id,
                "period_key": "2030-01",
                "collection": "deduct",
                "state": "posted",
                "amount": -1000.0,
            },
            "prepaid.topup.wizard": {"account_id": self.account_1.id, "amount": 1.0},
            "prepaid.batch.operation": {"kind": "trip", "property_ids": [Command.set(self.floor.ids)]},
            "prepaid.batch.operation.line": {"operation_id": self.batch.id, "company_id": self.company.id},
            # issue 13: account opening
            "prepaid.account.opening": {"partner_id": self.tenant_2.id, "unit_id": unit.id},
            "prepaid.monthly.ledger": {
                "building_id": self.building.id,
                "company_id": self.company.id,
                "month": "2026-01-01",
                "period_start": "2025-12-31 16:00:00",
                "period_end": "2026-01-31 16:00:00",
            },
            "prepaid.monthly.ledger.line": {"ledger_id": self.monthly_ledger.id, "fees": 5000.0},
            "prepaid.monthly.ledger.wizard": {"month": "2026-03-01"},
            "prepaid.shift.report.wizard": {"date_from": "2026-01-01", "date_to": "2026-01-02"},
            "prepaid.report.export.wizard": {"report": "consumption", "date_from": "2026-01-01"},
            "prepaid.reverse.wizard": {"account_id": self.account_1.id, "reason": "x"},
            "prepaid.temporary.supply.wizard": {"meter_ids": [(6, 0, self.meter_1.ids)]},
            "prepaid.refund.wizard": {"account_id": self.account_1.id, "reason": "x"},
            "prepaid.sitemap.import": {},
            # issue 13: reports
            "prepaid.order.report": {"account_id": self.account_1.id, "amount": 1000.0},
            "prepaid.consumption.report": {"meter_id": self.meter_1.id, "quantity": 1.0},
            "prepaid.portal.binding": {
                "account_id": self.account_2.id,
                "user_id": self.users["portal"].id,
                "via": "code",
            },
            "prepaid.portal.invitation": {
                "account_id": self.account_2.id,
                "token": "x",
                "expires": "2030-01-01",
            },
            "prepaid.portal.attempt": {"account_number": "x"},
            "prepaid.appliance": {
                "name": "MX heater",
                "code": "mx_heater",
                "power_min": 800,
                "power_max": 2000,
            },
            "prepaid.load.profile": {"name": "MX profile", "malicious_mode": "off"},
            "prepaid.load.profile.range": {"profile_id": self.load_records["prepaid.load.profile"].id},
            "prepaid.load.event": {
                "meter_id": self.meter_1.id,
                "company_id": self.company.id,
                "at": "2026-03-02 03:00:00",
                "classification": "malicious",
                "action": "trip",
            },
            "prepaid.load.restore.wizard": {"meter_id": self.meter_1.id, "reason": "x"},
            "prepaid.load.learn.wizard": {"meter_id": self.meter_1.id, "name": "x"},
            "prepaid.time.schedule": {"name": "MX new schedule"},
            "prepaid.time.schedule.window": {
                "schedule_id": self.load_records["prepaid.time.schedule"].id,
                "start": 1.0,
                "end": 2.0,
            },
            "prepaid.time.schedule.holiday": {
                "schedule_id": self.load_records["prepaid.time.schedule"].id,
                "date": "2026-03-06",
                "name": "x",
            },
        }[model]

    # ------------------------------------------------------------------ RPC

    def rpc(self, group, model, method, ids, *args, **kwargs):
        """Call ``method`` as /web/dataset/call_kw does, as the user of ``group``, with a hostile context."""
        user = self.users[group]
        env = self.env(user=user, su=False, context={"lang": "en_US"})
        records = env[model]
        get_public_method(records, method)
        kwargs = dict(kwargs, context=dict(HOSTILE_CONTEXT, allowed_company_ids=[self.company.id]))
        call_args = [list(ids), *args] if ids is not None else list(args)
        return odoo.api.call_kw(records, method, call_args, kwargs)

    def outcome(self, group, model, method, ids, *args, **kwargs):
        """'allowed' or 'refused' (AccessError), in a savepoint rolled back after the call."""
        savepoint = self.env.cr.savepoint(flush=False)
        try:
            with mute_logger(
                "odoo.sql_db", "odoo.models", "odoo.addons.prepaid_metering.models.prepaid_gateway"
            ):
                self.rpc(group, model, method, ids, *args, **kwargs)
                self.env.flush_all()
            return "allowed"
        except AccessError:
            return "refused"
        except (UserError, ValidationError, IntegrityError):
            return "allowed"  # the rights let the call through; the record's state or references refused it
        finally:
            savepoint.rollback()
            savepoint.close(rollback=False)
            self.env.invalidate_all()

    # ------------------------------------------------------------------ the tables are complete

    def suite_models(self):
        """Every model of the suite's addons (they all are named prepaid.*)."""
        return sorted(name for name in self.env.registry if name.startswith("prepaid."))

    def public_methods(self, model):
        methods = set()
        for klass in type(self.env[model]).mro():
            if klass.__module__.startswith("odoo.addons.prepaid_"):
                methods.update(attr for attr, value in vars(klass).items() if callable(value))
        public = []
        for method in sorted(methods):
            try:
                get_public_method(self.env[model], method)
            except AccessError:
                continue
            public.append(method)
        return public

    def test_every_model_and_public_method_has_decided_callers(self):
        models = self.suite_models()
        undecided = [m for m in models if m not in self.crud and m not in NOT_RECORDS]
        self.assertFalse(undecided, "models without a row in the authorisation matrix")
        missing = [
            (model, method)
            for model in models
            if model in self.crud
            for method in self.public_methods(model)
            if (model, method) not in self.methods
        ]
        self.assertFalse(missing, "public methods without decided callers in the authorisation matrix")
        for name in NOT_RECORDS:
            self.assertTrue(self.env[name]._abstract, name)
            decided = sorted(method for model, method in self.methods if model == name)
            self.assertEqual(
                self.public_methods(name), decided if name != "prepaid.guard.mixin" else ["create", "write"]
            )

    # ------------------------------------------------------------------ CRUD per group

    def test_read_write_create_unlink_per_group(self):
        failures = []
        for model, rights in self.crud.items():
            record = self.record_of(model)
            for group in GROUPS:
                allowed = rights.get(group, "")
                got = {
                    "r": self.outcome(group, model, "read", record.ids, [record._rec_name or "id"]),
                    "w": self.outcome(group, model, "write", record.ids, self.harmless_write(model)),
                    "c": self.outcome(group, model, "create", None, self.create_vals(model)),
                    "u": self.outcome(group, model, "unlink", self._disposable(model).ids),
                }
                for op, result in got.items():
                    expected = "allowed" if op in allowed else "refused"
                    if result != expected:
                        failures.append(f"{model} {group} {op}: expected {expected}, got {result}")
        self.assertFalse(failures, "\n".join(failures))

    def _disposable(self, model):
        """A record ``unlink`` may remove (in the rolled-back savepoint): the fixture itself."""
        return self.record_of(model)

    # ------------------------------------------------------------------ public methods per group

    def test_public_methods_per_group(self):
        failures = []
        for (model, method), allowed in self.methods.items():
            if method in ("create", "write"):
                continue  # the CRUD table and the protected writes below cover them
            if method in MODEL_METHODS:
                ids = None
            elif method in EMPTY_RECORDSET_METHODS:
                ids = []
            else:
                ids = self.record_of(model).ids
            for group in GROUPS:
                expected = "allowed" if group in allowed else "refused"
                result = self.outcome(group, model, method, ids)
                if result != expected:
                    failures.append(f"{model}.{method} {group}: expected {expected}, got {result}")
        self.assertFalse(failures, "\n".join(failures))

    def test_reopening_a_closed_account_is_for_managers(self):
        account = self.account_2
        internal(account).write({"state": "closed"})
        self.assertEqual(self.outcome("op_all", "prepaid.account", "action_reopen", account.ids), "refused")
        self.assertEqual(self.outcome("manager", "prepaid.account", "action_reopen", account.ids), "allowed")

    # ------------------------------------------------------------------ protected state

    def test_protected_state_is_refused_to_every_group_even_with_injected_context(self):
        balance = self.account_1.balance
        failures = []
        for model, writes in self.protected.items():
            record = self.record_of(model)
            for vals in writes:
                for group in ("op_one", "op_all", "manager", "accountant", "portal"):
                    if self.outcome(group, model, "write", record.ids, vals) != "refused":
                        failures.append(f"{model} {group} wrote {vals}")
        self.assertFalse(failures, "\n".join(failures))
        self.assertEqual(self.account_1.balance, balance)

    def test_billing_critical_fields_are_for_managers(self):
        failures = []
        for model, writes in MANAGER_WRITES.items():
            record = self.record_of(model)
            for vals in writes:
                for group in ("op_one", "op_all"):
                    if self.outcome(group, model, "write", record.ids, vals) != "refused":
                        failures.append(f"{model} {group} wrote {vals}")
                if self.outcome("manager", model, "write", record.ids, vals) != "allowed":
                    failures.append(f"{model} manager could not write {vals}")
        self.assertFalse(failures, "\n".join(failures))

    # ------------------------------------------------------------------ scope

    def test_an_operator_limited_to_a_floor_sees_nothing_of_another_floor(self):
        Property = self.env["prepaid.property"]
        other_floor = Property.create(
            {"name": "MX2", "code": "MX-F2", "kind": "floor", "parent_id": self.building.id}
        )
        other_unit = Property.create(
            {"name": "MX-201", "code": "MX-201", "kind": "unit", "parent_id": other_floor.id}
        )
        other_partner = self.env["res.partner"].create({"name": "Other floor tenant"})
        other_account = self.env["prepaid.account"].create(
            {"partner_id": other_partner.id, "unit_ids": [Command.set(other_unit.ids)]}
        )
        other_account.action_open()
        self.post(other_account, 10.0, "mx:other")
        other_meter = self._create_meter(other_unit, "MX-E-201")
        # An account without units is decided by its tenancies (and by the meters it bills).
        loose_account = self.env["prepaid.account"].create({"partner_id": other_partner.id})
        outside = {
            "prepaid.property": other_unit,
            "prepaid.account": other_account | loose_account,
            "prepaid.ledger": other_account.ledger_ids,
            "prepaid.meter": other_meter,
        }
        for model, records in outside.items():
            for record in records:
                self.assertEqual(
                    self.outcome("op_one", model, "read", record.ids, ["display_name"]),
                    "refused",
                    (model, record),
                )
                self.assertEqual(
                    self.outcome("op_all", model, "read", record.ids, ["display_name"]), "allowed"
                )
        self.assertEqual(
            self.env["prepaid.settlement.cursor"]
            .with_user(self.users["op_one"])
            .search_count([("meter_id", "=", other_meter.id)]),
            0,
        )
