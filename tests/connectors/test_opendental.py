"""The Open Dental connector against a real MariaDB holding a generated Open Dental database.

Each rule of reference/connectors.md §1.4–1.7 is checked against the rows in the database, and
the connector passes the same conformance suite as every other connector.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from vitalsync.app.schema import migrate
from vitalsync.core.db import make_engine, session
from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.mirror import bulk, reader
from vitalsync.mirror.store import apply_batch
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.opendental import OpenDentalConnector
from vitalsync_connectors.opendental.interval import Interval
from vitalsync_connectors.opendental.testdb import cancel, create_schema, delete, fill, move, scratch_database, upcoming

ZONE = "America/Los_Angeles"
TODAY = date.today()


def practice_database(server: str, patients: int = 80, appointments: int = 400):
    with scratch_database(f"{server}/vs_opendental") as (url, conn):
        create_schema(conn)
        fill(conn, patients=patients, appointments=appointments, seed=11, start=TODAY)
        yield url, conn


@dataclass
class Snapshot:
    """One full read of the shared practice, beside the raw rows it came from."""

    url: str
    conn: object
    batch: object
    patients: dict
    appointments: dict

    def rows(self, sql: str, *args) -> list[tuple]:
        return rows(self.conn, sql, *args)


def rows(conn, sql: str, *args) -> list[tuple]:
    cursor = conn.cursor()
    cursor.execute(sql, args)
    return list(cursor.fetchall())


@pytest.fixture(scope="module")
def practice(server):
    """A practice only read, never changed: shared by the mapping tests."""
    for url, conn in practice_database(server):
        batch = OpenDentalConnector(url, timezone=ZONE).read(None, datetime.now(timezone.utc))
        yield Snapshot(url, conn, batch, {p.key: p for p in batch.patients}, {a.key: a for a in batch.appointments})


@pytest.fixture
def fresh(server):
    """A practice of its own, for a test that changes it."""
    yield from practice_database(server, patients=40, appointments=200)


def server_now(conn) -> datetime:
    return rows(conn, "SELECT NOW()")[0][0]


def next_second(conn) -> None:
    """DateTStamp counts whole seconds and a read takes rows stamped before the server's current
    second: a change becomes readable once the server's clock has moved past it."""
    changed = server_now(conn)
    while server_now(conn) <= changed:
        time.sleep(0.05)


class OpenDentalSource:
    """A generated practice in MariaDB, changed as Open Dental changes it."""

    def __init__(self, url: str, conn) -> None:
        self.conn, self.connector = conn, OpenDentalConnector(url, timezone=ZONE)
        self.keys = iter(upcoming(conn, datetime.now() + timedelta(days=1)))
        self.changed = False

    def now(self) -> datetime:
        if self.changed:
            next_second(self.conn)
            self.changed = False
        return datetime.now(timezone.utc)

    def _next(self) -> int:
        self.changed = True
        return next(self.keys)

    def cancel(self) -> str:
        key = self._next()
        cancel(self.conn, key)
        return str(key)

    def move(self) -> str:
        key = self._next()
        (when,), = rows(self.conn, "SELECT AptDateTime FROM appointment WHERE AptNum = %s", key)
        move(self.conn, key, when + timedelta(days=1))
        return str(key)

    def delete(self) -> str:
        key = self._next()
        delete(self.conn, key)
        return str(key)


class TestOpenDentalContract(ConnectorContract):
    @pytest.fixture
    def source(self, fresh):
        return OpenDentalSource(*fresh)


# --- mapping: appointments -------------------------------------------------------------------

def test_an_appointment_lasts_five_minutes_per_pattern_character_or_thirty_without_one(practice):
    for num, pattern in practice.rows("SELECT AptNum, Pattern FROM appointment"):
        if (appointment := practice.appointments.get(str(num))) is not None:
            assert appointment.end - appointment.start == timedelta(minutes=5 * len(pattern) if pattern else 30)
    assert any(pattern == "" for _, pattern in practice.rows("SELECT AptNum, Pattern FROM appointment WHERE AptStatus = 1"))


def test_scheduled_complete_and_broken_map_and_planned_or_notes_are_not_appointments(practice):
    expected = {1: AppointmentStatus.SCHEDULED, 4: AppointmentStatus.SCHEDULED, 2: AppointmentStatus.COMPLETED,
                5: AppointmentStatus.CANCELLED, 3: AppointmentStatus.CANCELLED}
    seen = set()
    for num, status, when in practice.rows("SELECT AptNum, AptStatus, AptDateTime FROM appointment"):
        appointment = practice.appointments.get(str(num))
        seen.add(status)
        if status in (6, 7, 8) or when.year == 1:  # Planned, PtNote, PtNoteCompleted; no date
            assert appointment is None
        else:
            assert appointment.status is expected[status]
    assert seen == {1, 2, 3, 4, 5, 6, 7, 8}


def test_a_scheduled_appointment_without_a_date_is_rejected_by_number_once_the_stream_passed_it(practice):
    (num,), = practice.rows("SELECT AptNum FROM appointment WHERE AptStatus = 1 AND AptDateTime < '0001-01-02'")
    batch = OpenDentalConnector(practice.url, timezone=ZONE).read(None, datetime.now(timezone.utc))
    assert batch.rejected == []
    assert str(num) not in {a.key for a in batch.appointments} and str(num) not in {a.key for a in batch.appointments}
    assert batch.rejected == [f"appointment {num}: AptStatus Scheduled but no AptDateTime (0001-01-01); skipped"]


def test_times_are_practice_local_and_a_clinic_s_windows_zone_is_understood(practice):
    locations = {loc.key: loc for loc in practice.batch.locations}
    assert locations["0"].timezone == ZONE and locations["1"].timezone == ZONE
    assert locations["2"].timezone == "America/Chicago" and locations["2"].name == "Hillcrest Dental Chicago"
    assert locations["1"].phone == "+15033635432"
    rows = practice.rows("SELECT AptNum, AptDateTime FROM appointment WHERE AptDateTime > '0001-01-02'")
    for num, when in rows:
        if (appointment := practice.appointments.get(str(num))) is not None:
            zone = locations[appointment.location_key].timezone
            assert appointment.start == when.replace(tzinfo=ZoneInfo(zone)) and appointment.start.tzinfo.key == zone


def test_an_appointment_without_a_clinic_takes_the_clinic_of_its_chair(practice):
    rows = practice.rows("SELECT a.AptNum, o.ClinicNum FROM appointment a JOIN operatory o ON o.OperatoryNum = a.Op "
                         "WHERE a.ClinicNum = 0 AND a.AptStatus IN (1, 2) AND a.AptDateTime > '0001-01-02'")
    assert {practice.appointments[str(num)].location_key for num, _ in rows} == {"0", "1"}
    assert all(practice.appointments[str(num)].location_key == str(clinic) for num, clinic in rows)


def test_hygiene_visits_belong_to_the_hygienist_and_types_have_names(practice):
    rows = practice.rows("SELECT AptNum, ProvNum, ProvHyg, IsHygiene, AppointmentTypeNum FROM appointment "
                         "WHERE AptStatus = 2")
    names = dict(practice.rows("SELECT AppointmentTypeNum, AppointmentTypeName FROM appointmenttype"))
    for num, dentist, hygienist, hygiene, kind in rows:
        appointment = practice.appointments[str(num)]
        assert appointment.provider_key == str(hygienist if hygiene else dentist)
        assert appointment.type == names.get(kind, "")
    providers = {p.key: p.name for p in practice.batch.providers}
    assert providers["1"] == "Maya Chen, DDS" and providers["5"] == "DOC3"


# --- mapping: patients -----------------------------------------------------------------------

def test_only_current_patients_are_active_and_the_deceased_may_not_be_contacted(practice):
    for num, status in practice.rows("SELECT PatNum, PatStatus FROM patient"):
        patient = practice.patients[str(num)]
        assert patient.active is (status in (0, 1, 6)), status
        if status == 5:
            assert not (patient.sms_ok or patient.email_ok or patient.voice_ok)


def north_american(raw: str) -> str | None:
    """What a free-text US phone of the generator should become, worked out by hand."""
    raw = raw.removesuffix(" x12")  # an extension is not part of the number
    digits = re.sub(r"\D", "", raw)
    if re.search(r"[a-z]", raw) or len(digits) not in (10, 11) or (len(digits) == 11 and digits[0] != "1"):
        return None
    return None if digits[-10] in "01" or digits[-7] in "01" else "+1" + digits[-10:]


def test_only_the_wireless_phone_is_textable_and_broken_ones_become_none(practice):
    checked = 0
    for num, wireless, home, work in practice.rows("SELECT PatNum, WirelessPhone, HmPhone, WkPhone FROM patient"):
        patient = practice.patients[str(num)]  # every patient syncs, whatever the phones hold
        if not wireless.startswith(("+44", "+52")):
            assert patient.mobile == north_american(wireless), wireless
            checked += bool(wireless)
        assert patient.landline == (north_american(home) or north_american(work))
    assert checked > 40
    assert practice.patients["8"].mobile is None and practice.patients["8"].landline  # a home phone only
    assert sum(p.mobile is None for p in practice.patients.values()) > 10


def test_the_first_valid_address_of_several_is_the_email(practice):
    for num, raw in practice.rows("SELECT PatNum, Email FROM patient"):
        patient = practice.patients[str(num)]
        first = raw.replace(",", ";").split(";")[0].strip()
        assert patient.email == (first if "@" in first and " " not in first and not first.endswith("@") else None)


def test_a_family_shares_its_guarantor_and_languages_become_codes(practice):
    for num, guarantor, raw, first, preferred in practice.rows(
            "SELECT PatNum, Guarantor, Language, FName, Preferred FROM patient"):
        patient = practice.patients[str(num)]
        assert patient.guarantor_key == str(guarantor) and patient.first_name == (preferred or first)
        assert patient.language == {"spa": "es", "fra": "fr"}.get(raw, "en")
    families = {p.guarantor_key for p in practice.patients.values()}
    assert len(families) < len(practice.patients)


def test_consent_follows_txt_msg_ok_and_do_not_call(practice):
    for num, txt, confirm, contact in practice.rows(
            "SELECT PatNum, TxtMsgOk, PreferConfirmMethod, PreferContactMethod FROM patient WHERE PatStatus <> 5"):
        patient = practice.patients[str(num)]
        assert patient.sms_ok is (txt in (0, 1))  # Unknown counts as yes unless TextMsgOkStatusTreatAsNo
        assert patient.voice_ok is (confirm != 1 and contact != 1)


def test_commoptout_flags_for_reminders_become_opt_outs(practice):
    got = {(o.patient_key, o.channel) for o in practice.batch.opt_outs}
    wanted = set()
    for num, sms, mail in practice.rows("SELECT PatNum, OptOutSms, OptOutEmail FROM commoptout"):
        wanted |= {(str(num), Channel.SMS)} if sms & 7 else set()
        wanted |= {(str(num), Channel.EMAIL)} if mail & 7 else set()
    assert got == wanted
    assert ("4", Channel.SMS) not in got and ("8", Channel.SMS) not in got  # eThankYou, MsgToPay only
    assert {("7", Channel.SMS), ("7", Channel.EMAIL)} <= got


def test_recalls_have_their_type_and_a_due_date_from_the_packed_interval_when_empty(practice):
    recalls = {r.key: r for r in practice.batch.recalls}
    stored = {num: rest for num, *rest in practice.rows(
        "SELECT RecallNum, DateDue, DatePrevious, RecallInterval FROM recall WHERE RecallNum <= 4")}
    due, previous, interval = stored[1]
    assert due == date(1, 1, 1) and recalls["1"].due == Interval(months=6).after(previous) and interval == 6 << 16
    assert "2" not in recalls  # never seen: nothing is due yet
    assert recalls["3"].active is False
    assert stored[4][2] == 26 << 8 and recalls["4"].due == stored[4][0] == stored[4][1] + timedelta(weeks=26)
    assert {r.type for r in recalls.values()} == {"Prophy", "Perio", "4BW"}


def test_a_full_read_streams_and_can_be_read_again_and_counted(practice):
    batch = practice.batch
    # each stream carries InnoDB's estimate of its table's rows (what a reader process is worth)
    assert batch.appointments.estimated_rows > 0 and batch.patients.estimated_rows > 0
    assert len(batch.appointments) == len(practice.appointments) == sum(1 for _ in batch.appointments)
    assert batch.patients and batch.recalls
    assert batch.rows == sum(len(getattr(batch, name)) for name in (
        "locations", "providers", "patients", "appointments", "recalls", "opt_outs"))


@pytest.mark.parametrize("process", [True, False], ids=["reader-process", "in-process"])
def test_a_first_sync_stores_what_the_records_hold(practice, database_url, monkeypatch, process):
    """Into an empty mirror the streams hand their values over as the mirror stores them (worked out
    once per distinct value; in a reader process, or at home for a small practice like this one);
    the mirror converting the same rows as records stores the same."""
    monkeypatch.setattr(reader, "ROWS_WORTH_A_PROCESS", 0 if process else 10**9)
    engine = make_engine(database_url)
    migrate(engine)
    now = datetime(2026, 3, 2, 5, tzinfo=timezone.utc)
    inserted = []
    insert = bulk.Writer.insert
    monkeypatch.setattr(bulk.Writer, "insert", lambda self, rows, extra=(), stored=False: (
        inserted.append((self.insert_sql.split()[2], stored)), insert(self, rows, extra, stored)))

    def stored(batch) -> dict:
        inserted.clear()
        with session(engine) as db:
            apply_batch(db, batch, now)
            tables = {table: db.connection().exec_driver_sql(f"SELECT * FROM {table} ORDER BY key").all()
                      for table in ("patient", "appointment", "recall")}
            db.rollback()  # the mirror is empty again
        return tables, {table: stored for table, stored in inserted if table in tables}

    batch = OpenDentalConnector(practice.url, timezone=ZONE).read(None, now)
    streamed, handed_over = stored(batch)
    records, converted = stored(replace(batch, patients=list(batch.patients), appointments=list(batch.appointments),
                                        recalls=list(batch.recalls)))
    assert set(handed_over.values()) == {True} and set(converted.values()) == {False} and len(converted) == 3
    assert all(streamed.values()) and streamed == records
    engine.dispose()


def test_a_server_error_in_the_middle_of_a_first_sync_leaves_the_mirror_empty_and_says_what_happened(
        practice, database_url, monkeypatch):
    """The appointments of a first sync are read in a child process: an error the server sends after
    some rows (here a subquery that fails at one appointment) reaches the sync as the connector
    types it, and nothing of the batch stays."""
    monkeypatch.setattr(reader, "ROWS_WORTH_A_PROCESS", 0)  # this practice is small
    engine = make_engine(database_url)
    migrate(engine)
    batch = OpenDentalConnector(practice.url, timezone=ZONE).read(None, datetime.now(timezone.utc))
    (late,), = practice.rows("SELECT MAX(AptNum) FROM appointment WHERE AptStatus = 1")
    batch.appointments.sql = batch.appointments.sql.replace(
        "AptStatus,", f"IF(AptNum = {late}, (SELECT AptStatus FROM appointment), AptStatus),", 1)
    before = []
    with pytest.raises(PersonMustAct, match="MySQL error 1242"):
        for chunk in batch.appointments.tuples(10):
            before += chunk
    assert len(before) > 100  # the server sent rows before the error
    assert reader.worth_a_process(batch.appointments)
    with session(engine) as db, pytest.raises(PersonMustAct, match="MySQL error 1242"):
        apply_batch(db, batch, datetime.now(timezone.utc))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM appointment").scalar() == 0
        assert {"ix_appointment_patient_key", "ix_appointment_start_status"} <= {
            index["name"] for index in inspect(conn).get_indexes("appointment")}
    engine.dispose()


# --- incremental reads -----------------------------------------------------------------------

def test_a_broken_appointment_or_one_sent_to_the_unscheduled_list_reads_as_cancelled_or_gone(fresh):
    url, conn = fresh
    connector = OpenDentalConnector(url, timezone=ZONE)
    broken, unscheduled, undated = upcoming(conn, datetime.now())[:3]
    cursor = connector.read(None, datetime.now(timezone.utc)).cursor
    cancel(conn, broken)
    cancel(conn, unscheduled, unscheduled=True)
    conn.cursor().execute("UPDATE appointment SET AptStatus = 3, AptDateTime = '0001-01-01' WHERE AptNum = %s", (undated,))
    conn.commit()
    next_second(conn)
    batch = connector.read(cursor, datetime.now(timezone.utc))
    statuses = {a.key: a.status for a in batch.appointments}
    assert statuses == {str(broken): AppointmentStatus.CANCELLED, str(unscheduled): AppointmentStatus.CANCELLED}
    assert batch.deleted_appointments == [str(undated)]


def test_deletes_come_from_histappointment_and_from_legacy_deletedobject_rows(fresh):
    url, conn = fresh
    connector = OpenDentalConnector(url, timezone=ZONE)
    current, legacy = upcoming(conn, datetime.now())[:2]
    cursor = connector.read(None, datetime.now(timezone.utc)).cursor
    delete(conn, current)
    delete(conn, legacy, legacy=True)
    next_second(conn)
    batch = connector.read(cursor, datetime.now(timezone.utc))
    assert sorted(batch.deleted_appointments) == sorted([str(current), str(legacy)]) and not batch.appointments


def test_changed_patients_and_every_clinic_come_with_an_incremental_read(fresh):
    url, conn = fresh
    connector = OpenDentalConnector(url, timezone=ZONE)
    cursor = connector.read(None, datetime.now(timezone.utc)).cursor
    conn.cursor().execute("UPDATE patient SET WirelessPhone = '(971)555-0142', TxtMsgOk = 2 WHERE PatNum = 2")
    conn.commit()
    next_second(conn)
    batch = connector.read(cursor, datetime.now(timezone.utc))
    assert [(p.key, p.mobile, p.sms_ok) for p in batch.patients] == [("2", "+19715550142", False)]
    assert [loc.key for loc in batch.locations] == ["0", "1", "2"] and not batch.appointments


def test_rows_in_the_overlap_come_again_unchanged(fresh):
    url, conn = fresh
    connector = OpenDentalConnector(url, timezone=ZONE, overlap_seconds=30)
    key = upcoming(conn, datetime.now())[0]
    first = connector.read(None, datetime.now(timezone.utc)).cursor
    cancel(conn, key)
    next_second(conn)
    once = connector.read(first, datetime.now(timezone.utc))
    again = connector.read(once.cursor, datetime.now(timezone.utc))
    assert list(once.appointments) == list(again.appointments) and [a.key for a in once.appointments] == [str(key)]
    past = OpenDentalConnector(url, timezone=ZONE, overlap_seconds=0).read(once.cursor, datetime.now(timezone.utc))
    assert not past.appointments


def test_the_overlap_catches_a_change_committed_after_a_read_it_is_stamped_before(fresh):
    url, conn = fresh
    key = upcoming(conn, datetime.now())[0]
    cursor = OpenDentalConnector(url, timezone=ZONE).read(None, datetime.now(timezone.utc)).cursor
    conn.cursor().execute("UPDATE appointment SET AptDateTime = AptDateTime + INTERVAL 1 HOUR, "
                          "DateTStamp = %s - INTERVAL 2 SECOND WHERE AptNum = %s", (cursor, key))
    conn.commit()
    for overlap, seen in ((5, True), (0, False)):
        batch = OpenDentalConnector(url, timezone=ZONE, overlap_seconds=overlap).read(cursor, datetime.now(timezone.utc))
        assert (str(key) in {a.key for a in batch.appointments}) is seen


def test_a_cursor_the_connector_did_not_write_gives_a_full_read(practice):
    batch = OpenDentalConnector(practice.url, timezone=ZONE).read("2026-03-02T13:00:00+00:00", datetime.now(timezone.utc))
    assert batch.complete


def test_text_msg_ok_unknown_counts_as_no_when_the_practice_says_so(fresh):
    url, conn = fresh
    conn.cursor().execute("UPDATE preference SET ValueString = '1' WHERE PrefName = 'TextMsgOkStatusTreatAsNo'")
    conn.commit()
    batch = OpenDentalConnector(url, timezone=ZONE).read(None, datetime.now(timezone.utc))
    unknown = {str(num) for (num,) in rows(conn, "SELECT PatNum FROM patient WHERE TxtMsgOk = 0")}
    assert unknown and not any(p.sms_ok for p in batch.patients if p.key in unknown)
