import logging
import threading
import uuid

from odoo import SUPERUSER_ID, api
from odoo.addons.prepaid_base.tests.test_concurrency import wait_until_blocked
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from prepaid_engine.simulator import BusConfig, GatewayConfig, MeterConfig, SiteConfig, SiteThread
from prepaid_engine.types import Protocol, Transport, Utility

# A shard no other gateway of the database falls in: the poll cron of these tests polls only theirs.
SHARD = 999_983
RETRY_LOGGER = "odoo.addons.prepaid_base.tools.transactions"


@tagged("post_install", "-at_install")
class TestPollDuringCommand(TransactionCase):
    """A meter command is applied and committed while the poll cron is between its engine call and its
    writes, in two real transactions (the poll cron in a thread, the executor cron in the test's thread).

    Odoo runs in REPEATABLE READ: a poll whose transaction read the meters before the executor committed used
    to fail on updating them ("could not serialize access due to concurrent update"), with a traceback and
    the whole poll cycle lost (no readings, the gateway's Last Poll frozen). The data is committed (other
    cursors cannot see the test's own) and removed again in a cleanup."""

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        meter = MeterConfig("1", "acrel_ddsy1352", Protocol.MODBUS, Utility.ELECTRICITY)
        site = SiteConfig(
            name="concurrency",
            gateways=(GatewayConfig("c-mb", Transport.MODBUS_TCP, (BusConfig("1", 0, meters=(meter,)),)),),
            instant=True,
            latency=0.0,
        )
        self.sim = SiteThread(site)
        port = self.sim.start().gateways[0].buses[0].port
        self.addCleanup(self.sim.stop)
        context = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True}
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, context)
            gateway = env["prepaid.gateway"].create(
                {
                    "name": f"Concurrency {self.tag}",
                    "code": f"conc-{self.tag}",
                    "host": "127.0.0.1",
                    "transport": "modbus_tcp",
                    "timeout": 0.5,
                    "retries": 0,
                    "shard": SHARD,
                    "bus_ids": [(0, 0, {"name": "1", "port": port})],
                }
            )
            meter = env["prepaid.meter"].create(
                {
                    "name": f"Concurrency meter {self.tag}",
                    "model_id": env.ref("prepaid_metering.meter_model_acrel_ddsy1352").id,
                    "address": "1",
                    "bus_id": gateway.bus_ids.id,
                }
            )
            command = env["prepaid.meter.command"]._enqueue([{"meter_id": meter.id, "kind": "trip"}])
            self.ids = {"gateway": gateway.id, "meter": meter.id, "command": command.id}
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            for table, ids in (
                ("prepaid_meter", [self.ids["meter"]]),
                ("prepaid_gateway", [self.ids["gateway"]]),
            ):
                cr.execute(
                    SQL(
                        """SELECT c.relname, a.attname FROM pg_constraint f
                             JOIN pg_class c ON c.oid = f.conrelid
                             JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = ANY(f.conkey)
                            WHERE f.contype = 'f' AND f.confrelid = %s::regclass""",
                        table,
                    )
                )
                for referencing, column in cr.fetchall():
                    if referencing != table:
                        cr.execute(
                            SQL(
                                "DELETE FROM %s WHERE %s = ANY(%s)",
                                SQL.identifier(referencing),
                                SQL.identifier(column),
                                ids,
                            )
                        )
                model = table.replace("_", ".")
                cr.execute(SQL("DELETE FROM mail_message WHERE model = %s AND res_id = ANY(%s)", model, ids))
                cr.execute(
                    SQL("DELETE FROM mail_followers WHERE res_model = %s AND res_id = ANY(%s)", model, ids)
                )
                cr.execute(SQL("DELETE FROM %s WHERE id = ANY(%s)", SQL.identifier(table), ids))

    def _start_paused_poll(self):
        """The poll cron in a thread of its own, paused between the engine call and its writes; returns
        (thread, engine done event, go event, outcome dict, the poll's backend pid)."""
        Gateway = type(self.env["prepaid.gateway"])
        poll_specs = Gateway._poll_specs
        engine_done, go = threading.Event(), threading.Event()

        def paused(gateways, specs, trace=False, poller=None):
            result = poll_specs(gateways, specs, trace=trace, poller=poller)
            engine_done.set()
            go.wait(60)
            return result

        self.patch(Gateway, "_poll_specs", paused)
        # Cursors and environments are made here: building one takes the registry lock the runner holds.
        cr = self.registry.cursor()
        self.addCleanup(cr.close)
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute("SELECT pg_backend_pid()")
        pid = cr.fetchone()[0]
        outcome = {}

        def poll_cron():
            try:
                with mute_logger("pymodbus", "pymodbus.logging"):
                    outcome["polled"] = env["prepaid.gateway"]._cron_poll(shard=SHARD, shards=SHARD + 1)
                # what the cron runner does after each call
                cr.commit()  # pylint: disable=invalid-commit
            except Exception as exc:  # reported to the test's thread, which asserts there was none
                outcome["error"] = exc
                cr.rollback()

        thread = threading.Thread(target=poll_cron)
        thread.start()
        self.addCleanup(go.set)
        self.assertTrue(engine_done.wait(60), "the poll never reached the engine")
        return thread, go, outcome, pid

    def _state(self):
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    """SELECT (SELECT COUNT(*) FROM prepaid_meter_reading WHERE meter_id = %(meter)s),
                              (SELECT last_poll_at IS NOT NULL FROM prepaid_gateway WHERE id = %(gateway)s),
                              (SELECT online FROM prepaid_gateway WHERE id = %(gateway)s),
                              (SELECT state FROM prepaid_meter_command WHERE id = %(command)s),
                              (SELECT COUNT(*) FROM prepaid_comm_log
                                WHERE gateway_id = %(gateway)s AND direction = 'error')""",
                    **self.ids,
                )
            )
            return cr.fetchone()

    def _execute_commands(self, env):
        with mute_logger("pymodbus", "pymodbus.logging"):
            return env["prepaid.meter.command"]._cron_execute()

    def test_a_command_committed_while_the_poll_talks_to_the_field_loses_nothing(self):
        with self.assertNoLogs(RETRY_LOGGER, logging.INFO):  # not even a retry: the writes start afresh
            thread, go, outcome, _pid = self._start_paused_poll()
            with self.registry.cursor() as cr:  # the executor cron: commits when the block ends
                self.assertEqual(self._execute_commands(api.Environment(cr, SUPERUSER_ID, {})), 1)
            go.set()
            thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["polled"], 1)
        self.assertEqual(self._state(), (1, True, True, "done", 0))

    def test_a_command_committed_while_the_poll_writes_makes_it_store_again(self):
        """The executor has written the meter row and commits while the poll's write waits for that row: the
        poll's result is stored again, in a new transaction, from the same engine result."""
        with self.assertLogs(RETRY_LOGGER, logging.INFO) as logs:
            thread, go, outcome, pid = self._start_paused_poll()
            cr = self.registry.cursor()
            try:
                env = api.Environment(cr, SUPERUSER_ID, {})
                self.assertEqual(self._execute_commands(env), 1)
                env.flush_all()  # the meter row is now locked by the executor's transaction
                go.set()
                with self.registry.cursor() as observer:
                    blocked = wait_until_blocked(observer, pid)
                cr.commit()  # pylint: disable=invalid-commit
            finally:
                cr.close()
            thread.join(60)
        self.assertTrue(blocked, "the poll never waited for the meter row")
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", outcome)
        self.assertEqual(self._state(), (1, True, True, "done", 0))
        self.assertTrue([line for line in logs.output if "met a concurrent update" in line], logs.output)

    def test_a_poll_committed_while_the_executor_talks_to_the_field_loses_no_command(self):
        """The mirror case: the executor cron (in a thread) is between its engine call and storing the
        results when a poll of the same meter commits; the command's result is stored all the same."""
        Command = type(self.env["prepaid.meter.command"])
        execute_specs = Command._execute_specs
        engine_done, go = threading.Event(), threading.Event()

        def paused(commands, specs, engine_commands, poller=None):
            results = execute_specs(commands, specs, engine_commands, poller)
            engine_done.set()
            go.wait(60)
            return results

        self.patch(Command, "_execute_specs", paused)
        self.addCleanup(go.set)
        cr = self.registry.cursor()
        self.addCleanup(cr.close)
        env = api.Environment(cr, SUPERUSER_ID, {})
        outcome = {}

        def executor_cron():
            try:
                outcome["executed"] = self._execute_commands(env)
                cr.commit()  # pylint: disable=invalid-commit
            except Exception as exc:  # reported to the test's thread, which asserts there was none
                outcome["error"] = exc
                cr.rollback()

        thread = threading.Thread(target=executor_cron)
        thread.start()
        self.assertTrue(engine_done.wait(60), "the executor never reached the engine")
        with self.registry.cursor() as poll_cr:  # a poll of the same meter, committed meanwhile
            poll_env = api.Environment(poll_cr, SUPERUSER_ID, {})
            with mute_logger("pymodbus", "pymodbus.logging"):
                poll_env["prepaid.gateway"].browse(self.ids["gateway"])._poll()
            with self.registry.cursor() as observer:  # the command was marked sent before the field I/O
                observer.execute(
                    SQL("SELECT state FROM prepaid_meter_command WHERE id = %s", self.ids["command"])
                )
                self.assertEqual(observer.fetchone()[0], "sent")
        go.set()
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["executed"], 1)
        self.assertEqual(self._state(), (1, True, True, "done", 0))
        with self.registry.cursor() as cr2:
            cr2.execute(SQL("SELECT supply FROM prepaid_meter WHERE id = %s", self.ids["meter"]))
            self.assertEqual(cr2.fetchone()[0], "off")
