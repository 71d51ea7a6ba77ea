"""The HL7 listener: SIU messages sent by an MLLP client over real TCP, acknowledged, and read back."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from vitalsync.app.schema import migrate
from vitalsync.core.config import load_config
from vitalsync.core.db import make_engine, session
from vitalsync.core.errors import ConfigError, PersonMustAct
from vitalsync.core.vocab import AppointmentStatus as Status
from vitalsync.mirror.store import apply_batch
from vitalsync.mirror.tables import Appointment, Patient
from vitalsync.sync.registry import connector_class
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.hl7 import Hl7Connector
from vitalsync_connectors.hl7.testing import MllpClient, siu

TZ = "America/New_York"
NY = ZoneInfo(TZ)
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=NY)


@pytest.fixture
def listener():
    with Hl7Connector("127.0.0.1:0", timezone=TZ) as connector:
        yield connector


@pytest.fixture
def pms(listener):
    with MllpClient(listener.address) as client:
        yield client


def held(connector: Hl7Connector):
    return connector.read(None, NOW)


def test_a_new_appointment_is_acknowledged_with_its_control_id_and_read_with_everyone_it_names(listener, pms):
    reply = pms.send(siu("S12", "1001", patient="P1", start="202603101000", control="CTRL-1"))
    assert (reply.code, reply.control) == ("AA", "CTRL-1")
    assert reply.field("MSH", 8) == "ACK^S12^ACK"
    batch = held(listener)
    assert not batch.complete and batch.cursor
    [appointment] = batch.appointments
    assert appointment.key == "1001" and appointment.patient_key == "P1" and appointment.status is Status.SCHEDULED
    assert appointment.start == datetime(2026, 3, 10, 10, 0, tzinfo=NY)
    assert appointment.end - appointment.start == timedelta(minutes=30)
    assert (appointment.location_key, appointment.provider_key, appointment.type) == ("MAIN", "D1", "NORMAL")
    assert [p.key for p in batch.patients] == ["P1"] and batch.patients[0].mobile == "+12125550123"
    assert [(loc.key, loc.timezone) for loc in batch.locations] == [("MAIN", TZ)]
    assert [(p.key, p.name) for p in batch.providers] == [("D1", "John Smith")]


@pytest.mark.parametrize("event, status, expected", [
    ("S13", "Booked", Status.SCHEDULED),
    ("S14", "Booked", Status.SCHEDULED),
    ("S14", "Complete", Status.COMPLETED),
    ("S14", "Cancelled", Status.CANCELLED),
    ("S15", "Booked", Status.CANCELLED),
    ("S16", "Dc", Status.CANCELLED),
    ("S26", "Noshow", Status.NO_SHOW),
    ("S26", "", Status.NO_SHOW),
])
def test_each_trigger_event_gives_the_appointment_its_status(listener, pms, event, status, expected):
    pms.send(siu("S12", "1001"))
    cursor = held(listener).cursor
    assert pms.send(siu(event, "1001", status=status)).code == "AA"
    [appointment] = listener.read(cursor, NOW).appointments
    assert appointment.status is expected


def test_a_rescheduled_appointment_is_read_at_its_new_time(listener, pms):
    pms.send(siu("S12", "1001", start="202603101000"))
    cursor = held(listener).cursor
    assert pms.send(siu("S13", "1001", start="202603121430", minutes=60)).code == "AA"
    [moved] = listener.read(cursor, NOW).appointments
    assert (moved.start, moved.end) == (datetime(2026, 3, 12, 14, 30, tzinfo=NY), datetime(2026, 3, 12, 15, 30, tzinfo=NY))


def test_a_deleted_appointment_needs_only_its_id_and_is_reported_deleted(listener, pms):
    pms.send(siu("S12", "1001"))
    cursor = held(listener).cursor
    reply = pms.send("MSH|^~\\&|PMS|CLINIC|||20260302||SIU^S17^SIU_S12|DEL-1|P|2.5.1\rSCH||1001^PMS\r")
    assert (reply.code, reply.control) == ("AA", "DEL-1")
    batch = listener.read(cursor, NOW)
    assert batch.deleted_appointments == ["1001"] and not batch.appointments


def test_an_incremental_read_holds_each_appointment_once_at_its_latest_state(listener, pms):
    pms.send(siu("S12", "1001"))
    pms.send(siu("S12", "1002"))
    cursor = held(listener).cursor
    pms.send(siu("S13", "1001", start="202603111000"))
    pms.send(siu("S15", "1001", start="202603111000"))
    pms.send(siu("S17", "1002"))
    pms.send(siu("S12", "1003"))
    batch = listener.read(cursor, NOW)
    assert [(a.key, a.status) for a in batch.appointments] == [("1001", Status.CANCELLED), ("1003", Status.SCHEDULED)]
    assert batch.deleted_appointments == ["1002"]
    assert listener.read(batch.cursor, NOW).rows == 0


def test_a_cursor_from_another_run_reads_everything_this_listener_holds(listener, pms):
    pms.send(siu("S12", "1001"))
    for cursor in (None, "0a0a0a0a0a0a:99", "2026-03-02T12:00:00+00:00"):
        assert [a.key for a in listener.read(cursor, NOW).appointments] == ["1001"]


def without(name: str):
    return lambda m: "\r".join(s for s in m.split("\r") if not s.startswith(name))


@pytest.mark.parametrize("breakage, reason, code", [
    pytest.param(lambda m: m.replace("MSH|", "XSH|", 1), "does not start with an MSH segment", "100", id="no-msh"),
    pytest.param(lambda m: m.replace("RGS|1\r", "RGS|1\rthis is not a segment\r"), "segment 6 is not an HL7 segment",
                 "100", id="not-a-segment"),
    pytest.param(without("SCH"), "the SCH segment is missing", "100", id="no-sch"),
    pytest.param(without("PID"), "the PID segment is missing", "100", id="no-pid"),
    pytest.param(lambda m: m.replace("SCH||1001^PMS", "SCH||"), "SCH-2 (the filler appointment ID) and SCH-1 are empty",
                 "101", id="no-appointment-id"),
    pytest.param(lambda m: m.replace("P1^^^PMS^MR", ""), "PID-3 (the patient identifier) is empty", "101",
                 id="no-patient-id"),
    pytest.param(lambda m: m.replace("202603101000", "2026031"), "TQ1-7 is not an HL7 date-time with a time of day",
                 "102", id="not-a-time"),
    pytest.param(lambda m: m.replace("202603101000", "202613401000"), "TQ1-7 is not a valid date-time", "102",
                 id="impossible-date"),
    pytest.param(lambda m: m.replace("|30^min|", "|30^fortnights|"), "TQ1-6 has duration units vitalsync does not know",
                 "103", id="unknown-units"),
])
def test_a_bad_message_is_refused_with_its_reason_and_nothing_is_applied(listener, pms, breakage, reason, code):
    message = breakage(siu("S12", "1001", name="Zyx^Quentin", control="BAD-1"))
    reply = pms.send(message)
    assert reply.code == "AE" and reason in reply.reason
    assert reply.field("ERR", 3).split("^")[:3:2] == [code, "HL70357"] and reason in reply.field("ERR", 8)
    assert reply.control == ("BAD-1" if message.startswith("MSH") else "")
    assert "Zyx" not in reply.text and "5550123" not in reply.text, "the reason carries no patient data"
    assert held(listener).rows == 0 and listener.counts["refused"] == 1


def test_a_message_in_latin_1_is_answered_in_latin_1(listener, pms):
    message = siu("S12", "1001", name="Müller^Jürgen").replace("|2.5.1", "|2.5.1||||||8859/1", 1)
    reply = pms.send(message, encoding="latin-1")
    assert reply.code == "AA" and reply.field("MSH", 17) == "8859/1"
    assert held(listener).patients[0].last_name == "Müller"


def test_messages_vitalsync_does_not_read_are_acknowledged_but_not_applied(listener, pms):
    adt = "MSH|^~\\&|PMS|CLINIC|||20260302||ADT^A08^ADT_A01|ADT-1|P|2.5.1\rPID|1||P1^^^PMS^MR||Doe^Jane\r"
    for message in (adt, siu("S23", "1001"), siu("S12", "1002", processing="T")):
        reply = pms.send(message)
        assert reply.code == "AA" and "ignored" in reply.reason
    assert held(listener).rows == 0 and listener.counts["ignored"] == 3


def test_a_sink_gets_one_whole_batch_per_message_and_the_journal_stays_empty():
    batches = []
    with Hl7Connector("127.0.0.1:0", timezone=TZ, sink=batches.append) as listener, MllpClient(listener.address) as pms:
        assert pms.send(siu("S12", "1001")).code == "AA"
        assert pms.send(siu("S17", "1001")).code == "AA"
        assert held(listener).rows == 0
    assert [len(b.appointments) for b in batches] == [1, 0] and batches[1].deleted_appointments == ["1001"]
    assert not any(b.complete for b in batches)


def test_a_sink_that_fails_has_the_message_refused_for_resending_and_nothing_recorded():
    stored, failures = [], [RuntimeError("database is locked")]

    def sink(batch):
        if failures:
            raise failures.pop()
        stored.append(batch)

    with Hl7Connector("127.0.0.1:0", timezone=TZ, sink=sink) as listener, MllpClient(listener.address) as pms:
        message = siu("S12", "1001", control="RETRY-1")
        refused = pms.send(message)
        assert (refused.code, refused.control) == ("AR", "RETRY-1") and "send it again" in refused.reason
        assert "locked" not in refused.text and stored == [] and held(listener).rows == 0
        assert pms.send(message).code == "AA", "the listener survives, and the resent message is applied"
    assert [b.appointments[0].key for b in stored] == ["1001"]


def test_several_messages_in_one_write_are_each_acknowledged_in_order(listener, pms):
    frames = b"".join(b"\x0b" + siu("S12", key, control=f"C{key}").encode() + b"\x1c\r" for key in ("1", "2", "3"))
    pms.write(b"\r\n" + frames)  # with the keep-alive bytes some senders put between messages
    assert [pms.receive().control for _ in range(3)] == ["C1", "C2", "C3"]
    assert [a.key for a in held(listener).appointments] == ["1", "2", "3"]


def test_a_message_split_across_many_writes_is_put_back_together(listener, pms):
    data = b"\x0b" + siu("S12", "1001", control="SPLIT").encode() + b"\x1c\r"
    for start in range(0, len(data), 7):
        pms.write(data[start:start + 7])
        time.sleep(0.001)
    assert pms.receive().control == "SPLIT"


def test_two_pms_connections_at_once_are_both_served(listener):
    replies: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def client(name: str) -> None:
        with MllpClient(listener.address) as pms:
            barrier.wait()
            replies[name] = [pms.send(siu("S12", f"{name}-{n}")).code for n in range(15)]

    threads = [threading.Thread(target=client, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert replies == {"a": ["AA"] * 15, "b": ["AA"] * 15}
    assert len(held(listener).appointments) == 30


def test_the_mirror_holds_the_appointment_when_the_ack_arrives_well_within_a_second(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'mirror.db'}")
    migrate(engine)

    def apply_to_mirror(batch):
        with session(engine) as db:
            apply_batch(db, batch, datetime.now(timezone.utc))
            db.commit()

    with Hl7Connector("127.0.0.1:0", timezone=TZ, sink=apply_to_mirror) as listener, MllpClient(listener.address) as pms:
        for event in ("S12", "S15"):
            sent = time.monotonic()
            assert pms.send(siu(event, "1001", patient="P1")).code == "AA"
            elapsed = time.monotonic() - sent
            with session(engine) as db:
                row = db.exec(select(Appointment).where(Appointment.key == "1001")).one()
                assert db.exec(select(Patient).where(Patient.key == "P1")).one().mobile == "+12125550123"
            assert elapsed < 1.0
        assert row.status == Status.CANCELLED and row.version == 2
    engine.dispose()


def test_stopping_lets_the_message_being_applied_finish_and_be_acknowledged():
    started = threading.Event()

    def slow_sink(batch):
        started.set()
        time.sleep(0.3)

    listener = Hl7Connector("127.0.0.1:0", timezone=TZ, sink=slow_sink).start()
    with MllpClient(listener.address) as pms:
        pms.write(b"\x0b" + siu("S12", "1001", control="LAST").encode() + b"\x1c\r")
        assert started.wait(2)
        listener.stop()
        assert (pms.receive().code, listener.running) == ("AA", False)


def test_reading_starts_the_listener_and_stopping_closes_the_port():
    connector = Hl7Connector("127.0.0.1:0", timezone=TZ)
    assert not connector.running
    assert connector.read(None, NOW).rows == 0 and connector.running
    address = connector.address
    with MllpClient(address) as pms:
        assert pms.send(siu("S12", "1001")).code == "AA"
    connector.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)


def test_check_describes_the_listener_and_what_it_received(listener, pms):
    pms.send(siu("S12", "1001"))
    pms.send(siu("S12", "1002", start="garbage"))
    host, port = listener.address
    assert listener.check() == f"HL7 MLLP listener on {host}:{port}: 1 messages applied, 1 refused, 0 ignored"


def test_a_port_taken_by_another_program_is_for_a_person_to_fix():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        connector = Hl7Connector(f"127.0.0.1:{other.getsockname()[1]}", timezone=TZ)
        assert "in use" in connector.check()
        with pytest.raises(PersonMustAct, match="another program uses that port"):
            connector.start()


@pytest.mark.parametrize("listen", ["2575", "localhost:", "host:port", "127.0.0.1:70000"])
def test_a_listen_address_that_is_not_host_port_is_a_config_error(listen):
    with pytest.raises(ConfigError, match="connector.listen"):
        Hl7Connector(listen)


def test_it_is_built_from_the_config_with_the_clinic_zone_and_region(write_config, tmp_path):
    config = load_config(write_config(
        f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n[schedule]\ntimezone = "America/Chicago"\n'
        '[connector]\ntype = "hl7"\nlisten = "127.0.0.1:12575"\ndefault_region = "GB"\n'))  # never started
    connector = connector_class("hl7").from_config(config.connector, config)
    assert isinstance(connector, Hl7Connector) and not connector.running
    assert (connector.zone.key, connector.region, connector.address) == ("America/Chicago", "GB", ("127.0.0.1", 12575))


class Hl7Source:
    """A PMS that pushes SIU messages: a small practice booked first, then front-desk edits."""

    PATIENTS = {  # key: (name, home phones)
        "P1": ("Doe^Jane", "^PRN^CP^^1^212^5550123"),
        "P2": ("Garcia^Luis", "^PRN^CP^^^^555-01~^PRN^PH^^1^718^5550142"),  # a broken cell and a landline
        "P3": ("Doe^Tom", "(212) 555-0177"),  # no equipment type: a home phone, voice only
        "P4": ("Nguyen^An", "^NET^Internet^an@example.org"),
    }

    def __init__(self, connector: Hl7Connector) -> None:
        self.connector = connector
        self.pms = MllpClient(connector.address)
        self.booked: dict[str, tuple[str, str]] = {}
        self.used: set[str] = set()
        for n, patient in enumerate(list(self.PATIENTS) * 2):
            self._send("S12", f"{2000 + n}", patient, f"202603{5 + n:02d}0930")

    def now(self) -> datetime:
        return NOW

    def _send(self, event: str, key: str, patient: str, start: str) -> str:
        name, home = self.PATIENTS[patient]
        reply = self.pms.send(siu(event, key, patient=patient, start=start, name=name, home=home))
        assert reply.code == "AA", reply.reason
        self.booked[key] = (patient, start)
        return key

    def _upcoming(self) -> str:
        key = next(k for k in self.booked if k not in self.used)
        self.used.add(key)
        return key

    def cancel(self) -> str:
        key = self._upcoming()
        return self._send("S15", key, *self.booked[key])

    def move(self) -> str:
        key = self._upcoming()
        patient, start = self.booked[key]
        return self._send("S13", key, patient, start[:8] + "1500")

    def delete(self) -> str:
        key = self._upcoming()
        return self._send("S17", key, *self.booked[key])


class TestHl7Contract(ConnectorContract):
    @pytest.fixture
    def source(self):
        with Hl7Connector("127.0.0.1:0", timezone=TZ) as connector:
            source = Hl7Source(connector)
            yield source
            source.pms.close()

    @pytest.mark.skip(reason="a listener holds only what the PMS sent since it started, never the whole practice: "
                             "a complete batch would delete every other appointment from the mirror")
    def test_a_full_read_is_complete_and_has_a_cursor(self, source):
        """Replaced by test_a_full_read_holds_everything_received_but_is_never_complete."""

    def test_a_full_read_holds_everything_received_but_is_never_complete(self, source):
        batch = source.connector.read(None, source.now())
        assert not batch.complete and batch.cursor
        assert len(batch.appointments) == 8 and len(batch.patients) == 4

    def test_phones_follow_the_equipment_type(self, source):
        patients = {p.key: p for p in source.connector.read(None, source.now()).patients}
        assert (patients["P1"].mobile, patients["P1"].landline) == ("+12125550123", None)
        assert (patients["P2"].mobile, patients["P2"].landline) == (None, "+17185550142")
        assert (patients["P3"].mobile, patients["P3"].landline) == (None, "+12125550177")
        assert (patients["P4"].mobile, patients["P4"].email) == (None, "an@example.org")
