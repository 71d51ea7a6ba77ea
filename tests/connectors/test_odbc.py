"""The ODBC connector reads Dentrix-like vendor views through unixODBC and the MariaDB ODBC driver.

Every test gets its own database on the MariaDB server at 127.0.0.1:3306 (root, no password),
holding views shaped like a PMS's: their own column names, status words, naive local times and
free-text phones. Without the server or the driver the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vitalsync.core.config import load_config
from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.odbc import OdbcConnector

try:
    import pyodbc
except ImportError as exc:  # no pyodbc, or no unixODBC under it
    if os.environ.get("CI"):
        raise
    pytest.skip(f"pyodbc cannot be imported: {exc}", allow_module_level=True)

DRIVER = "MariaDB Unicode"
SERVER = "DRIVER={MariaDB Unicode};SERVER=127.0.0.1;PORT=3306;"
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=timezone.utc)

SCHEMA = """
CREATE TABLE v_clinic (clinic_id INT PRIMARY KEY, clinic_name VARCHAR(60), phone VARCHAR(30));
CREATE TABLE v_provider (provider_id VARCHAR(10) PRIMARY KEY, prov_name VARCHAR(60), clinic_id INT);
CREATE TABLE v_patient (patient_id INT PRIMARY KEY, first_name VARCHAR(40), last_name VARCHAR(40),
  pager VARCHAR(30), home_phone VARCHAR(30), emailaddr VARCHAR(120), receives_sms CHAR(1),
  pat_status CHAR(1), guarantor_id INT, lang VARCHAR(20));
CREATE TABLE v_appt (appointment_id INT PRIMARY KEY, patient_id INT, clinic_id INT, provider_id VARCHAR(10),
  appt_start DATETIME, length INT, status VARCHAR(20), appt_type VARCHAR(40));
CREATE TABLE v_recall (recall_id INT PRIMARY KEY, patient_id INT, due_date DATE, recall_type VARCHAR(40))
"""
CLINICS = [(1, "Riverside Dental", "(212) 736-4400"), (2, "Hillcrest Dental", "(312) 736-4400")]
PROVIDERS = [("DDS1", "Dr. Maya Chen", 1), ("RDH2", "Priya Nair, RDH", 2)]
PATIENTS = [  # a family (1 and 2), phones good, broken and missing, one inactive patient
    (1, "Maria", "Garcia", "(212) 736-4412", "212.736.4413", "maria@example.com; mg@example.org", "Y", "A", 1,
     "Spanish"),
    (2, "Luis", "Garcia", "call mom", None, None, "N", "A", 1, "spa"),
    (3, "James", "Smith", "555-1234", "(646) 321-9876", "jsmith@example.com", "Y", "A", 3, "English"),
    (4, "Emily", "Clark", "+1 773 736 0123", None, None, "Y", "I", 4, None),
    (5, "Wei", "Nguyen", "7737360199", None, "not an address", "Y", "A", 5, ""),
]
APPOINTMENTS = [  # naive New York times
    (101, 1, 1, "DDS1", datetime(2026, 3, 4, 9, 0), 60, "Scheduled", "Exam"),
    (102, 2, 1, "DDS1", datetime(2026, 3, 4, 10, 0), 30, "Scheduled", "Hygiene"),
    (103, 3, 2, "RDH2", datetime(2026, 3, 5, 14, 30), 45, "Scheduled", "Hygiene"),
    (104, 5, 2, "RDH2", datetime(2026, 3, 6, 8, 0), 60, "Scheduled", "Filling"),
    (105, 3, 1, "DDS1", datetime(2026, 2, 20, 9, 0), 30, "Complete", "Exam"),
    (106, 1, 1, "DDS1", datetime(2026, 2, 25, 11, 0), 30, "Broken", "Exam"),
    (107, 5, 2, "RDH2", datetime(2026, 2, 26, 15, 0), 0, "FTA", "Hygiene"),
    (108, 4, 2, "RDH2", datetime(2026, 3, 9, 16, 0), 30, "Scheduled", None),
]
RECALLS = [(901, 1, datetime(2026, 6, 1).date(), "Prophy"), (902, 3, datetime(2026, 4, 15).date(), "Perio")]

QUERIES = {
    "locations": "SELECT clinic_id, clinic_name AS name, phone FROM v_clinic",
    "providers": "SELECT provider_id, prov_name, clinic_id FROM v_provider",
    "patients": "SELECT * FROM v_patient ORDER BY patient_id",
    "appointments": "SELECT * FROM v_appt ORDER BY appointment_id",
    "recalls": "SELECT recall_id, patient_id, due_date, recall_type FROM v_recall",
}
COLUMNS = {
    "locations": {"key": "clinic_id"},
    "providers": {"key": "provider_id", "name": "prov_name", "location_key": "clinic_id"},
    "patients": {"key": "patient_id", "mobile": "pager", "landline": "home_phone", "email": "emailaddr",
                 "sms_ok": "receives_sms", "active": "pat_status", "guarantor_key": "guarantor_id", "language": "lang"},
    "appointments": {"key": "appointment_id", "patient_key": "patient_id", "location_key": "clinic_id",
                     "provider_key": "provider_id", "start": "appt_start", "duration": "length", "type": "appt_type"},
    "recalls": {"key": "recall_id", "patient_key": "patient_id", "due": "due_date", "type": "recall_type"},
}
STATUSES = {"FTA": "no_show"}  # 'Scheduled', 'Broken' and 'Complete' are common words the connector knows


@pytest.fixture(scope="session")
def server():
    """A root connection to the MariaDB server through the ODBC driver."""
    try:
        if DRIVER not in pyodbc.drivers():
            raise RuntimeError(f"the ODBC driver [{DRIVER}] is not registered (scripts/install-system-packages)")
        admin = pyodbc.connect(SERVER + "UID=root;", autocommit=True, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means the server or driver is not there
        if os.environ.get("CI"):
            pytest.fail(f"MariaDB over ODBC is required in CI: {exc}")
        pytest.skip(f"no MariaDB over ODBC at 127.0.0.1:3306: {exc}")
    yield admin
    admin.close()


@pytest.fixture
def database(server):
    """A fresh database of vendor views with a small practice in it; its name."""
    name = f"vs_odbc_{secrets.token_hex(5)}"
    server.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    db = pyodbc.connect(SERVER + f"DATABASE={name};UID=root;", autocommit=True)
    for statement in SCHEMA.split(";"):
        db.execute(statement)
    for table, rows in (("v_clinic", CLINICS), ("v_provider", PROVIDERS), ("v_patient", PATIENTS),
                        ("v_appt", APPOINTMENTS), ("v_recall", RECALLS)):
        db.cursor().executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    yield name, db
    db.close()
    server.execute(f"DROP DATABASE {name}")


def views(database, *, queries=None, columns=None, port=3306, **options) -> OdbcConnector:
    name, _ = database
    return OdbcConnector(SERVER.replace("3306", str(port)) + f"DATABASE={name};UID=root;",
                         queries=QUERIES | (queries or {}), columns=COLUMNS | (columns or {}), statuses=STATUSES,
                         timezone="America/New_York", **options)


class ViewsSource:
    """The front desk editing appointments in the views, as the PMS would."""

    def __init__(self, database) -> None:
        self.connector, self.db = views(database), database[1]
        self.upcoming = [101, 102, 103, 104, 108]

    def now(self) -> datetime:
        return NOW

    def _edit(self, sql: str) -> str:
        key = self.upcoming.pop(0)
        self.db.execute(sql, key)
        return str(key)

    def cancel(self) -> str:
        return self._edit("UPDATE v_appt SET status = 'Broken' WHERE appointment_id = ?")

    def move(self) -> str:
        return self._edit("UPDATE v_appt SET appt_start = appt_start + INTERVAL 1 DAY WHERE appointment_id = ?")

    def delete(self) -> str:
        return self._edit("DELETE FROM v_appt WHERE appointment_id = ?")


class TestOdbcContract(ConnectorContract):
    @pytest.fixture
    def source(self, database):
        return ViewsSource(database)


def test_the_column_mapping_reads_the_views_own_names(database):
    batch = views(database).read(None, NOW)
    maria = next(p for p in batch.patients if p.key == "1")
    assert (maria.first_name, maria.last_name) == ("Maria", "Garcia")
    assert (maria.mobile, maria.landline) == ("+12127364412", "+12127364413")
    assert (maria.email, maria.language, maria.guarantor_key, maria.sms_ok) == ("maria@example.com", "es", "1", True)
    exam = next(a for a in batch.appointments if a.key == "101")
    assert exam.start == datetime(2026, 3, 4, 9, 0, tzinfo=NEW_YORK) and exam.end - exam.start == timedelta(minutes=60)
    assert (exam.patient_key, exam.location_key, exam.provider_key, exam.type) == ("1", "1", "DDS1", "Exam")
    assert {(l.key, l.name, l.phone) for l in batch.locations} == {("1", "Riverside Dental", "+12127364400"),
                                                                  ("2", "Hillcrest Dental", "+13127364400")}
    assert {(p.key, p.location_key) for p in batch.providers} == {("DDS1", "1"), ("RDH2", "2")}
    assert {(r.key, r.patient_key, r.type) for r in batch.recalls} == {("901", "1", "Prophy"), ("902", "3", "Perio")}


def test_the_pms_flags_become_consent_and_activity(database):
    patients = {p.key: p for p in views(database).read(None, NOW).patients}
    assert patients["2"].sms_ok is False and patients["1"].sms_ok is True
    assert patients["4"].active is False and patients["3"].active is True


def test_vendor_status_words_map_to_vitalsync_statuses(database):
    statuses = {a.key: a.status for a in views(database).read(None, NOW).appointments}
    assert statuses["101"] is AppointmentStatus.SCHEDULED  # 'Scheduled'
    assert statuses["105"] is AppointmentStatus.COMPLETED  # 'Complete'
    assert statuses["106"] is AppointmentStatus.CANCELLED  # 'Broken'
    assert statuses["107"] is AppointmentStatus.NO_SHOW  # 'FTA', mapped in the config


def test_broken_phones_and_emails_become_none_and_the_patient_is_kept(database):
    batch = views(database).read(None, NOW)
    patients = {p.key: p for p in batch.patients}
    assert len(patients) == len(PATIENTS) and not batch.rejected
    assert patients["2"].mobile is None and patients["3"].mobile is None and patients["3"].landline == "+16463219876"
    assert patients["5"].email is None and patients["5"].language == "en"


def test_a_bad_row_is_rejected_without_patient_data_and_the_good_rows_are_kept(database):
    _, db = database
    db.execute("ALTER TABLE v_appt MODIFY appt_start VARCHAR(30)")  # a view that hands out dates as text
    db.cursor().executemany("INSERT INTO v_appt VALUES (?, ?, 1, 'DDS1', ?, 30, 'Scheduled', 'Exam')", [
        (109, 1, "next Tuesday"), (110, None, "2026-03-10 09:00:00"), (111, 999, "2026-03-10 10:00:00")])
    batch = views(database).read(None, NOW)
    assert batch.rejected == ["appointments row 9: start: not a date", "appointments row 10: patient_key: missing",
                              "appointments row 11: patient_key: not among the patients query's rows"]
    assert sorted(a.key for a in batch.appointments) == [str(row[0]) for row in APPOINTMENTS]
    assert next(a for a in batch.appointments if a.key == "103").start == datetime(2026, 3, 5, 14, 30, tzinfo=NEW_YORK)


def test_an_unmapped_status_rejects_the_row_and_names_the_word(database):
    database[1].execute("UPDATE v_appt SET status = 'Wait list' WHERE appointment_id = 104")
    batch = views(database).read(None, NOW)
    assert batch.rejected == ["appointments row 4: status: 'Wait list' is not mapped; add it to [connector.statuses]"]


def test_a_duplicated_key_is_rejected_once_and_the_first_row_kept(database):
    # a join with a many-providers table (Eaglesoft's appointment_provider) repeats appointments
    query = "SELECT * FROM v_appt UNION ALL SELECT * FROM v_appt WHERE appointment_id = 101"
    batch = views(database, queries={"appointments": query}).read(None, NOW)
    assert [a.key for a in batch.appointments].count("101") == 1
    assert batch.rejected == ["appointments row 9: key: the same as row 1's"]


def test_a_row_that_turns_unreadable_is_reported_not_deleted(database):
    connector, (_, db) = views(database), database
    cursor = connector.read(None, NOW).cursor
    db.execute("UPDATE v_appt SET patient_id = NULL WHERE appointment_id = 104")
    batch = connector.read(cursor, NOW)
    assert not batch.complete and batch.deleted_appointments == [] and batch.appointments == []
    assert batch.rejected == ["appointments row 4: patient_key: missing"]


def test_a_cursor_this_connector_did_not_hand_out_gets_a_complete_read(database):
    cursor = views(database).read(None, NOW).cursor
    batch = views(database).read(cursor, NOW)  # a new process: no fingerprints yet
    assert batch.complete and len(batch.appointments) == len(APPOINTMENTS)


def test_a_sync_that_was_never_applied_is_read_again_in_full(database):
    connector = views(database)
    applied = connector.read(None, NOW).cursor
    connector.read(applied, NOW)  # held by the removal guard, say: its cursor is never stored
    database[1].execute("UPDATE v_appt SET status = 'Broken' WHERE appointment_id = 101")
    batch = connector.read(applied, NOW)
    assert batch.complete and len(batch.appointments) == len(APPOINTMENTS)


def test_rows_without_a_location_go_to_the_clinics_main_office(database):
    queries = {"locations": "",
               "appointments": "SELECT appointment_id AS id, patient_id, appt_start AS start FROM v_appt"}
    columns = {"appointments": {"key": "id", "patient_key": "patient_id"}}
    batch = views(database, queries=queries, columns=columns, location_name="Test Dental").read(None, NOW)
    assert {a.location_key for a in batch.appointments} == {"main"}
    assert [(l.key, l.name, l.timezone) for l in batch.locations] == [("main", "Test Dental", "America/New_York")]
    assert all(a.end - a.start == timedelta(minutes=30) for a in batch.appointments)


def test_a_query_naming_a_missing_table_asks_a_person_to_fix_that_query(database):
    with pytest.raises(PersonMustAct, match=r"the recalls query failed \(SQLSTATE 42S02: Table .*v_recalls"):
        views(database, queries={"recalls": "SELECT * FROM v_recalls"}).read(None, NOW)


def test_a_mapped_column_the_query_lacks_asks_a_person_to_fix_the_mapping(database):
    with pytest.raises(PersonMustAct, match=r"the appointments query returns no column 'appt_start'"):
        views(database, queries={"appointments": "SELECT appointment_id, patient_id, clinic_id, provider_id, "
                                                 "length, status, appt_type FROM v_appt"}).check()


def test_an_unreachable_server_is_retried_later(database):
    with pytest.raises(RetryLater, match="not reachable"):
        views(database, port=3399).read(None, NOW)


def test_a_missing_data_source_asks_a_person_to_fix_the_connection_string():
    connector = OdbcConnector("DSN=vs_no_such_dsn;", queries=QUERIES, timezone="America/New_York")
    with pytest.raises(PersonMustAct, match=r"cannot open the ODBC data source \(SQLSTATE IM002"):
        connector.check()


def test_check_names_the_database_and_the_queries(database):
    assert views(database).check().startswith("ODBC MariaDB")


def test_a_password_in_the_connection_string_is_refused():
    with pytest.raises(ConfigError, match="connection_string: holds a password"):
        OdbcConnector("DSN=dentrix;UID=reader;PWD=hunter2", queries=QUERIES, timezone="America/New_York")


@pytest.fixture
def reader(server, database):
    """A MariaDB user that may only read the views; its password has ODBC's special characters."""
    user, password = f"vs_odbc_{secrets.token_hex(3)}", "S3c;r{e}t=" + secrets.token_hex(4)
    server.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    server.execute(f"GRANT SELECT ON {database[0]}.* TO '{user}'@'127.0.0.1'")
    yield user, password
    server.execute(f"DROP USER '{user}'@'127.0.0.1'")


def odbc_config(write_config, database: str, user: str):
    """A config file for the views, as a clinic's IT would write it."""
    text = (f'[connector]\ntype = "odbc"\nconnection_string = "{SERVER}DATABASE={database};UID={user};"\n'
            'statuses = { FTA = "no_show" }\n[connector.queries]\n')
    text += "".join(f'{entity} = "{sql}"\n' for entity, sql in QUERIES.items())
    for entity, mapping in COLUMNS.items():
        text += f"[connector.columns.{entity}]\n"
        text += "".join(f'{field} = "{column}"\n' for field, column in mapping.items())
    return load_config(write_config(text))


def test_the_password_comes_from_the_secret(database, reader, write_config, monkeypatch):
    user, password = reader
    config = odbc_config(write_config, database[0], user)
    monkeypatch.setenv("VITALSYNC_ODBC_PASSWORD", password)
    batch = OdbcConnector.from_config(config.connector, config).read(None, NOW)
    assert len(batch.appointments) == len(APPOINTMENTS) and not batch.rejected
    monkeypatch.setenv("VITALSYNC_ODBC_PASSWORD", "wrong")
    with pytest.raises(PersonMustAct, match="login was refused"):
        OdbcConnector.from_config(config.connector, config).read(None, NOW)
