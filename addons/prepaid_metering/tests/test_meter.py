import gc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo import fields
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import SQL, mute_logger
from psycopg2 import IntegrityError

from prepaid_engine.catalog import builtin_models
from prepaid_engine.types import MeterModel, Reading, Supply

from .common import MeteringCommon


@tagged("post_install", "-at_install")
class TestMeterModels(MeteringCommon):
    def test_data_records_match_the_engine_catalogue(self):
        catalog = builtin_models()
        records = self.env["prepaid.meter.model"].with_context(active_test=False).search([])
        for code, model in catalog.items():
            record = records.filtered(lambda r, code=code: r.code == code)
            self.assertEqual(len(record), 1, code)
            self.assertEqual(
                record.definition.strip(),
                model.to_json(),
                f"{code}: regenerate data/prepaid_meter_model_data.xml from the catalogue",
            )
            self.assertEqual(record._get_engine_model(), model)
            self.assertEqual((record.protocol, record.utility), (str(model.protocol), str(model.utility)))

    def test_definition_must_parse_and_match_the_record(self):
        Model = self.env["prepaid.meter.model"]
        good = builtin_models()["modbus_generic"]
        vals = Model._prepare_vals_from_engine(good) | {"code": "custom_generic"}
        with self.assertRaises(ValidationError):
            Model.create(vals)  # the definition still says modbus_generic
        custom = MeterModel.from_dict(good.to_dict() | {"code": "custom_generic"})
        record = Model.create(vals | {"definition": custom.to_json()})
        self.assertEqual(record._get_engine_model(), custom)
        with self.assertRaises(ValidationError):
            record.definition = "{not json"
        with self.assertRaises(ValidationError):
            record.definition = custom.to_json().replace('"modbus"', '"cjt188"')
        with self.assertRaises(ValidationError):
            record.utility = "water"


@tagged("post_install", "-at_install")
class TestMeter(MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls._create_gateway("m-gw", transport="transparent", buses=(("1", 1), ("2", 2)))
        cls.bus_1, cls.bus_2 = cls.gateway.bus_ids.sorted("name")

    def test_address_is_validated_by_protocol(self):
        cases = [
            (self.model_dlt, "000000001101", True),
            (self.model_dlt, "1101", False),
            (self.model_dlt, "00000000110A", False),
            (self.model_cjt, "00000000001101", True),
            (self.model_cjt, "000000001101", False),
            (self.model_acrel, "1", True),
            (self.model_acrel, "247", True),
            (self.model_acrel, "248", False),
            (self.model_acrel, "0", False),
            (self.model_acrel, "3/12", True),
            (self.model_acrel, "3/", False),
        ]
        for index, (model, address, valid) in enumerate(cases):
            with self.subTest(model=model.code, address=address):
                vals = {
                    "name": f"m{index}",
                    "utility": model.utility,
                    "model_id": model.id,
                    "address": address,
                }
                if valid:
                    self.assertTrue(self.env["prepaid.meter"].create(vals))
                else:
                    with self.assertRaises(ValidationError):
                        self.env["prepaid.meter"].create(vals)

    def test_address_errors_say_the_protocols_shape(self):
        """One message per rule of the engine's check_address (kinds address.digits and address.modbus)."""
        for model, address, shape in (
            (self.model_dlt, "1101", "12 digits"),
            (self.model_cjt, "000000001101", "14 digits"),
            (self.model_acrel, "248", "a unit id 1-247 or unit/circuit"),
            (self.model_acrel, "007", "a unit id 1-247 or unit/circuit"),
        ):
            with self.subTest(address=address), self.assertRaises(ValidationError) as caught:
                self.env["prepaid.meter"].create(
                    {"name": "m", "utility": model.utility, "model_id": model.id, "address": address}
                )
            self.assertEqual(caught.exception.args[0], f"Address {address} of meter m: expected {shape}.")

    def test_address_is_unique_per_bus(self):
        self._create_meter(self.bus_1, "000000001101", self.model_dlt)
        self._create_meter(self.bus_2, "000000001101", self.model_dlt)  # another bus: fine
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self._create_meter(self.bus_1, "000000001101", self.model_dlt)

    def test_device_ref_is_unique_per_platform(self):
        platform_1, platform_2 = self.env["prepaid.platform"].create(
            [{"name": "P1", "kind": "ctwing"}, {"name": "P2", "kind": "onenet"}]
        )
        vals = {"name": "nb", "utility": "water", "model_id": self.model_cjt.id, "device_ref": "IMEI1"}
        self.env["prepaid.meter"].create(vals | {"platform_id": platform_1.id, "address": "00000000000001"})
        self.env["prepaid.meter"].create(vals | {"platform_id": platform_2.id, "address": "00000000000001"})
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self.env["prepaid.meter"].create(
                vals | {"platform_id": platform_1.id, "address": "00000000000002"}
            )

    def test_gateway_follows_the_bus_and_the_account_follows_the_unit(self):
        meter = self._create_meter(self.bus_2, "000000001102", self.model_dlt, unit_id=self.unit_101.id)
        self.assertEqual(meter.gateway_id, self.gateway)
        self.assertEqual(meter.account_id, self.account_101)
        self.assertEqual(meter.building_id, self.building)
        self.assertEqual(meter.unit, "kWh")
        meter.unit_id = self.unit_201
        self.assertEqual(meter.account_id, self.account_201)
        self.assertIn(meter, self.account_201.meter_ids)
        self.assertIn(meter, self.unit_201.meter_ids)

    def test_model_must_fit_the_utility(self):
        with self.assertRaises(ValidationError):
            self._create_meter(self.bus_1, "00000000001101", self.model_cjt, utility="electricity")

    def test_engine_spec_carries_the_record_ids(self):
        meter = self._create_meter(self.bus_1, "000000001101", self.model_dlt, ct_ratio=5)
        spec = self.gateway._prepare_engine_gateway()
        self.assertEqual(spec.key, str(self.gateway.id))
        self.assertEqual([b.key for b in spec.buses], ["1"])
        (meter_spec,) = spec.buses[0].meters
        self.assertEqual(meter_spec.key, str(meter.id))
        self.assertEqual(meter_spec.ct_ratio, 5)
        self.assertEqual(meter_spec.model, self.model_dlt._get_engine_model())

    def test_manual_reading_updates_the_meter_but_not_its_online_state(self):
        meter = self._create_meter(self.bus_1, "000000001101", self.model_dlt)
        at = fields.Datetime.now().replace(microsecond=0) - timedelta(hours=1)
        self.env["prepaid.meter.reading"].create({"meter_id": meter.id, "read_at": at, "total": 42.5})
        self.assertEqual(meter.last_reading_at, at)
        self.assertEqual(meter.last_total, 42.5)
        self.assertFalse(meter.online)
        older = at - timedelta(hours=1)
        self.env["prepaid.meter.reading"].create({"meter_id": meter.id, "read_at": older, "total": 40.0})
        self.assertEqual(meter.last_total, 42.5, "an older reading does not move the meter back")


@tagged("post_install", "-at_install")
class TestIngest(MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        gateway = cls._create_gateway("ingest-gw")
        cls.meters = [cls._create_meter(gateway.bus_ids, str(unit)) for unit in (1, 2, 3)]

    def _readings(self, count, start=datetime(2026, 1, 1, tzinfo=UTC), first=0):
        return [
            Reading(
                meter_key=str(self.meters[i % 3].id),
                read_at=start + timedelta(minutes=15 * (i // 3)),
                total=Decimal(first + i).scaleb(-2),
                supply=Supply.ON,
            )
            for i in range(count)
        ]

    def _queries(self, readings):
        """Ingest ``readings``; returns the new ids and the statements ingestion itself ran (the hook that
        follows, settlement when billing is installed, is not ingestion's: it is left out)."""
        Reading_ = self.env["prepaid.meter.reading"]
        self.env.flush_all()
        hooked = []
        self.patch(
            type(Reading_), "_after_ingest", lambda model, ids, meter_ids=None: hooked.append(ids) or ids
        )
        before = self.cr.sql_log_count
        ids = Reading_._ingest(readings, "import")
        self.assertEqual(hooked, [ids])
        return ids, self.cr.sql_log_count - before

    def test_bulk_ingest_costs_the_same_statements_whatever_the_row_count(self):
        small_ids, small_queries = self._queries(self._readings(30))
        self.assertEqual(len(small_ids), 30)
        big = self._readings(4500, start=datetime(2026, 2, 1, tzinfo=UTC), first=30)
        big_ids, big_queries = self._queries(big)
        self.assertEqual(len(big_ids), 4500)
        # The rows travel by COPY; one INSERT (which also moves the meters) stores them: 4500 rows cost
        # the statements 30 rows cost.
        self.assertEqual(big_queries, small_queries)
        self.assertEqual(max(self.env["prepaid.meter.reading"].browse(big_ids).mapped("total")), 45.29)
        last = max(big, key=lambda r: (r.meter_key == str(self.meters[0].id), r.read_at))
        self.assertEqual(self.meters[0].last_reading_at, last.read_at.replace(tzinfo=None))
        self.assertEqual(Decimal(str(self.meters[0].last_total)), last.total)
        self.assertFalse(self.meters[0].online, "imported readings do not say the meter is online")
        again, _queries = self._queries(big)
        self.assertEqual(again, [])

    def test_ingest_stores_every_value_of_a_reading_as_the_meter_said_it(self):
        at = datetime(2026, 3, 1, 8, 15, 42, 123456, tzinfo=UTC)
        reading = Reading(
            meter_key=str(self.meters[1].id),
            read_at=at,
            total=Decimal("1234.567"),
            sharp=Decimal("1.5"),
            peak=Decimal("2.25"),
            flat=Decimal("3"),
            valley=Decimal("4.125"),
            voltage=Decimal("229.9"),
            current=Decimal("5.125"),
            power=Decimal("1.1234"),
            power_factor=Decimal("0.987"),
            frequency=Decimal("49.98"),
            supply=Supply.OFF,
            balance=Decimal("-12.34"),
            purchase_count=7,
        )
        [new_id] = self.env["prepaid.meter.reading"]._ingest([reading], "push")
        self.env.cr.execute(
            SQL(
                """SELECT meter_id, read_at, source, company_id, utility, building_id, total::text,
                          sharp::text, peak::text, flat::text, valley::text, voltage::text, current::text,
                          power::text, power_factor::text, frequency::text, supply, balance::text,
                          purchase_count
                     FROM prepaid_meter_reading WHERE id = %s""",
                new_id,
            )
        )
        meter = self.meters[1]
        self.assertEqual(
            self.env.cr.fetchone(),
            (
                meter.id,
                datetime(2026, 3, 1, 8, 15, 42),
                "push",
                meter.company_id.id,
                meter.utility,
                meter.building_id.id or None,
                "1234.567",
                "1.5",
                "2.25",
                "3",
                "4.125",
                "229.9",
                "5.125",
                "1.1234",
                "0.987",
                "49.98",
                "off",
                "-12.34",
                7,
            ),
        )
        meter.invalidate_recordset()
        self.assertRecordValues(
            meter,
            [
                {
                    "last_reading_at": datetime(2026, 3, 1, 8, 15, 42),
                    "last_total": 1234.567,
                    "supply": "off",
                    "meter_balance": -12.34,
                    "purchase_count": 7,
                    "online": True,
                }
            ],
        )

    def test_a_reading_checks_one_foreign_key_its_meter(self):
        """Company and building are copies of the meter's without foreign keys of their own: the meter's
        (whose deletion takes its readings along) is the one lookup a new reading costs."""
        rows = self.env.execute_query(
            SQL(
                """SELECT a.attname, c.confdeltype FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
                    WHERE c.conrelid = 'prepaid_meter_reading'::regclass AND c.contype = 'f'"""
            )
        )
        self.assertEqual(rows, [("meter_id", "c")])

    def test_ingest_gives_back_the_planner_settings_and_the_garbage_collector_as_it_found_them(self):
        Reading_ = self.env["prepaid.meter.reading"]
        self.env.cr.execute(SQL("SET LOCAL jit = on; SET LOCAL random_page_cost = 3.5"))
        self.assertEqual(len(Reading_._ingest(self._readings(3), "poll")), 3)
        self.assertEqual(
            self.env.execute_query(SQL("SELECT current_setting('jit'), current_setting('random_page_cost')")),
            [("on", "3.5")],
        )
        self.assertTrue(gc.isenabled())
        gc.disable()
        self.addCleanup(gc.enable)
        again = Reading_._ingest(self._readings(3, start=datetime(2026, 2, 1, tzinfo=UTC)), "poll")
        self.assertEqual(len(again), 3)
        self.assertFalse(gc.isenabled(), "a collector paused by the caller stays paused")

    def test_readings_of_unknown_meters_are_skipped(self):
        start = datetime(2026, 1, 1, tzinfo=UTC)
        strangers = [
            Reading(meter_key="999999999", read_at=start),
            Reading(meter_key="not-an-id", read_at=start),
        ]
        readings = [*self._readings(3), *strangers]
        with mute_logger("odoo.addons.prepaid_metering.models.prepaid_meter_reading"):
            self.assertEqual(len(self.env["prepaid.meter.reading"]._ingest(readings, "poll")), 3)


@tagged("post_install", "-at_install")
class TestCommLogRetention(MeteringCommon):
    def test_autovacuum_purges_rows_older_than_the_retention(self):
        gateway = self._create_gateway("log-gw")
        Log = self.env["prepaid.comm.log"]
        now = fields.Datetime.now()
        self.env["ir.config_parameter"].sudo().set_param("prepaid_metering.comm_log_days", "10")
        old, recent = Log.create(
            [
                {
                    "gateway_id": gateway.id,
                    "direction": "error",
                    "kind": "timeout",
                    "at": now - timedelta(days=11),
                },
                {
                    "gateway_id": gateway.id,
                    "direction": "error",
                    "kind": "timeout",
                    "at": now - timedelta(days=9),
                },
            ]
        )
        self.assertGreaterEqual(Log._gc_comm_log(), 1)
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())


@tagged("post_install", "-at_install")
class TestRoomStatusBoard(MeteringCommon):
    def test_board_shows_the_worst_meter_state_and_the_account_level(self):
        gateway = self._create_gateway("board-gw")
        electricity = self._create_meter(gateway.bus_ids, "1", unit_id=self.unit_101.id)
        water = self.env["prepaid.meter"].create(
            {
                "name": "w",
                "utility": "water",
                "model_id": self.model_cjt.id,
                "address": "00000000000001",
                "unit_id": self.unit_101.id,
            }
        )
        internal(electricity | water).write({"online": True, "supply": "on"})
        self.assertEqual(self.unit_101.board_group, "Block M / M1")
        self.assertRecordValues(
            self.unit_101,
            [
                {
                    "electricity_state": "on",
                    "water_state": "on",
                    "board_account_id": self.account_101.id,
                    "board_partner_id": self.tenant_101.id,
                    "board_level": self.account_101.level,
                }
            ],
        )
        internal(electricity).supply = "off"
        internal(water).online = False
        self.assertEqual((self.unit_101.electricity_state, self.unit_101.water_state), ("off", "offline"))
        self.assertEqual((self.unit_102.electricity_state, self.unit_102.water_state), ("none", "none"))
        board = self.env["prepaid.property"].search([("meter_ids.supply", "=", "off")])
        self.assertIn(self.unit_101, board)
