"""The CSV drop-folder connector, on real files in a temporary folder: the contract, then its own rules."""

from __future__ import annotations

import csv
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from vitalsync.app.schema import migrate
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.core.db import make_engine, session
from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater, SyncHeld
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.mirror.refresh import refresh_once
from vitalsync.mirror.tables import Appointment, SyncRun
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.csv import CsvConnector

NEW_YORK = ZoneInfo("America/New_York")
NIGHT = datetime(2026, 3, 2, 1, 0, tzinfo=NEW_YORK)  #: when the first export is written
FORMAT = "%m/%d/%Y %I:%M %p"
#: The export's own headers, as a PMS names them.
COLUMNS = {
    "patients": {"key": "PatNum", "first_name": "FName", "last_name": "LName", "mobile": "Cell", "landline": "Home",
                 "email": "Email", "language": "Lang", "guarantor_key": "Guarantor", "sms_ok": "TextOK", "active": "Status"},
    "appointments": {"key": "AptNum", "patient_key": "PatNum", "location_key": "Clinic", "provider_key": "Prov",
                     "start": "Start", "duration": "Minutes", "status": "Status", "type": "Kind"},
    "locations": {"key": "ClinicNum", "name": "Description", "phone": "Phone"},
    "recalls": {"key": "RecallNum", "patient_key": "PatNum", "due": "DateDue", "type": "Kind"},
    "pickups": {"key": "OrderNum", "patient_key": "PatNum", "location_key": "Clinic", "ready_at": "Ready"},
}
FILES = {"patients": "patients*.csv", "appointments": "appointments*.csv", "locations": "clinics*.csv",
         "recalls": "recalls*.csv", "pickups": "orders*.csv"}
STATUSES = {"Sched": "scheduled", "Broken": "cancelled", "Done": "completed", "NoShow": "no_show"}
HEADERS = {entity: list(mapping.values()) for entity, mapping in COLUMNS.items()}
FILE_NAMES = {"patients": "patients", "appointments": "appointments", "locations": "clinics", "recalls": "recalls",
              "pickups": "orders"}


def practice() -> dict[str, list[dict[str, str]]]:
    """Two clinics, eight patients in families (one with a broken phone, one Spanish-speaking, one
    deceased), thirty upcoming appointments, a past one, recalls and an order ready for pick-up."""
    names = [("Ana", "Ruiz", "(212) 555-0101", "spa"), ("Ben", "Ruiz", "(212) 555-0102", ""), ("Cleo", "Park", "555-12", "eng"),
             ("Dan", "Okafor", "+1 917 555 0142", ""), ("Eve", "Okafor", "", ""), ("Finn", "Berg", "646-555-0199", "en"),
             ("Gail", "Shaw", "(212) 555-0107", ""), ("Hal", "Moss", "(212) 555-0108", "")]
    patients = [{"PatNum": str(n), "FName": first, "LName": last, "Cell": cell, "Home": "", "Lang": lang,
                 "Email": f"{first.lower()}@example.org; other@example.org", "TextOK": "Y" if n != 6 else "N",
                 "Guarantor": {2: "1", 5: "4"}.get(n, str(n)), "Status": "Deceased" if n == 8 else "Active"}
                for n, (first, last, cell, lang) in enumerate(names, start=1)]
    first = datetime(2026, 3, 3, 8, 0)
    appointments = [{"AptNum": f"{100 + n}", "PatNum": str(n % 7 + 1), "Clinic": "1" if n % 3 else "2", "Prov": "7",
                     "Start": (first + timedelta(days=n // 6, hours=n % 6)).strftime(FORMAT), "Minutes": "40",
                     "Status": "Sched", "Kind": "Cleaning"} for n in range(30)]
    appointments.append({"AptNum": "99", "PatNum": "3", "Clinic": "1", "Prov": "", "Start": "02/20/2026 09:00 AM",
                         "Minutes": "30", "Status": "Done", "Kind": "Exam"})
    return {
        "locations": [{"ClinicNum": "1", "Description": "Downtown", "Phone": "(212) 555-0100"},
                      {"ClinicNum": "2", "Description": "Uptown", "Phone": "(212) 555-0200"}],
        "patients": patients, "appointments": appointments,
        "recalls": [{"RecallNum": "R1", "PatNum": "1", "DateDue": "2026-06-01", "Kind": "Hygiene"}],
        "pickups": [{"OrderNum": "O1", "PatNum": "4", "Clinic": "1", "Ready": "03/02/2026 10:00 AM"}],
    }


def write(folder: Path, name: str, header: list[str], rows: list[dict[str, str]], at: datetime, *,
          delimiter: str = ",", encoding: str = "utf-8", marker: bool = False) -> Path:
    """Write a file as the PMS would, last modified ``at``."""
    path = folder / name
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows([row.get(column, "") for column in header] for row in rows)
    touch(path, at)
    if marker:
        touch(path.with_name(path.name + ".done"), at)
    return path


def touch(path: Path, at: datetime) -> None:
    path.touch()
    ns = int(at.timestamp() * 1e9)
    os.utime(path, ns=(ns, ns))


def export(folder: Path, tables, at: datetime, tag: str = "0001", **options) -> None:
    for entity, rows in tables.items():
        write(folder, f"{FILE_NAMES[entity]}-{tag}.csv", HEADERS[entity], rows, at, **options)


def connector(folder: Path, **options) -> CsvConnector:
    return CsvConnector(folder, **{"files": FILES, "columns": COLUMNS, "statuses": STATUSES, "datetime_format": FORMAT,
                                   "timezone": "America/New_York"} | options)


class CsvSource:
    """A drop folder where every front-desk edit is followed by a new complete export."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.tables, self.at, self.exports = folder, practice(), NIGHT, 0
        self.connector = connector(folder)
        self.used: set[str] = set()
        self._export()

    def now(self) -> datetime:
        return self.at + timedelta(minutes=5)

    def _export(self) -> None:
        self.exports += 1
        self.at += timedelta(minutes=10)
        export(self.folder, self.tables, self.at, f"{self.exports:04d}")

    def _upcoming(self) -> dict[str, str]:
        row = next(r for r in self.tables["appointments"] if r["Status"] == "Sched" and r["AptNum"] not in self.used)
        self.used.add(row["AptNum"])
        return row

    def cancel(self) -> str:
        row = self._upcoming()
        row["Status"] = "Broken"
        self._export()
        return row["AptNum"]

    def move(self) -> str:
        row = self._upcoming()
        row["Start"] = (datetime.strptime(row["Start"], FORMAT) + timedelta(days=1)).strftime(FORMAT)
        self._export()
        return row["AptNum"]

    def delete(self) -> str:
        row = self._upcoming()
        self.tables["appointments"].remove(row)
        self._export()
        return row["AptNum"]


class TestCsvContract(ConnectorContract):
    @pytest.fixture
    def source(self, tmp_path):
        return CsvSource(tmp_path)


@pytest.fixture
def source(tmp_path) -> CsvSource:
    return CsvSource(tmp_path)


def by_key(rows):
    return {row.key: row for row in rows}


def test_the_column_mapping_formats_and_time_zone_shape_the_records(source):
    batch = source.connector.read(None, source.now())
    patients, appointments = by_key(batch.patients), by_key(batch.appointments)
    assert patients["1"].first_name == "Ana" and patients["1"].language == "es" and patients["1"].mobile == "+12125550101"
    assert patients["1"].email == "ana@example.org" and patients["2"].guarantor_key == "1"
    assert not patients["6"].sms_ok and not patients["8"].active and patients["1"].active
    first = appointments["100"]
    assert first.start == datetime(2026, 3, 3, 8, 0, tzinfo=NEW_YORK) and first.end - first.start == timedelta(minutes=40)
    assert first.location_key == "2" and first.provider_key == "7" and first.type == "Cleaning"
    assert by_key(batch.recalls)["R1"].due == date(2026, 6, 1)
    assert by_key(batch.pickups)["O1"].ready_at == datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)
    assert by_key(batch.locations)["1"].timezone == "America/New_York" and by_key(batch.locations)["1"].phone == "+12125550100"


def test_day_first_dates_semicolons_and_a_windows_encoding_are_read_as_configured(tmp_path):
    at = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    write(tmp_path, "patients.csv", ["id", "vorname", "nachname", "handy"],
          [{"id": "1", "vorname": "José", "nachname": "Müller", "handy": "0151 23456789"}], at, delimiter=";", encoding="cp1252")
    write(tmp_path, "appointments.csv", ["id", "patient", "beginn", "ende"],
          [{"id": "9", "patient": "1", "beginn": "03.03.2026 09:15", "ende": "03.03.2026 10:00"}], at, delimiter=";", encoding="cp1252")
    columns = {"patients": {"key": "id", "first_name": "vorname", "last_name": "nachname", "mobile": "handy"},
               "appointments": {"key": "id", "patient_key": "patient", "start": "beginn", "end": "ende"}}
    reader = CsvConnector(tmp_path, columns=columns, datetime_format="%d.%m.%Y %H:%M", delimiter=";",
                          encoding="cp1252", timezone="Europe/Berlin", region="DE", location_name="Praxis")
    batch = reader.read(None, at + timedelta(hours=1))
    assert batch.patients[0].first_name == "José" and batch.patients[0].mobile == "+4915123456789"
    assert batch.appointments[0].start == datetime(2026, 3, 3, 9, 15, tzinfo=ZoneInfo("Europe/Berlin"))
    assert batch.appointments[0].location_key == "main" and batch.locations[0].name == "Praxis"
    assert batch.locations[0].timezone == "Europe/Berlin"


def test_export_status_words_map_to_vitalsync_statuses_and_an_unknown_one_is_reported(source):
    rows = source.tables["appointments"]
    rows[0]["Status"], rows[1]["Status"], rows[2]["Status"], rows[3]["Status"] = "Broken", "NoShow", "cancelled", "Pending"
    source._export()
    batch = source.connector.read(None, source.now())
    statuses = {a.key: a.status for a in batch.appointments}
    assert statuses["100"] is AppointmentStatus.CANCELLED and statuses["101"] is AppointmentStatus.NO_SHOW
    assert statuses["102"] is AppointmentStatus.CANCELLED and statuses["99"] is AppointmentStatus.COMPLETED
    assert "103" not in statuses
    assert batch.rejected == ["appointments-0002.csv line 5: status: 'Pending' is not mapped; add it to [connector] statuses"]


def test_a_file_still_being_written_is_not_picked_up_until_it_has_settled(source):
    cursor = source.connector.read(None, source.now()).cursor
    source.tables["appointments"][0]["Status"] = "Broken"
    writing = source.now()
    export(source.folder, source.tables, writing, "0002")
    unchanged = source.connector.read(cursor, writing + timedelta(seconds=10))
    assert unchanged.cursor == cursor and not unchanged.complete and not unchanged.appointments
    settled = source.connector.read(cursor, writing + timedelta(seconds=30))
    assert settled.cursor != cursor and [a.key for a in settled.appointments] == ["100"]


def test_a_done_marker_makes_a_file_complete_at_once_but_not_a_stale_one(source):
    cursor = source.connector.read(None, source.now()).cursor
    source.tables["appointments"][0]["Status"] = "Broken"
    now = source.now()
    export(source.folder, source.tables, now, "0002", marker=True)
    touch(source.folder / "appointments-0002.csv", now + timedelta(seconds=1))  # written again after its marker
    assert not source.connector.read(cursor, now + timedelta(seconds=2)).appointments
    touch(source.folder / "appointments-0002.csv.done", now + timedelta(seconds=2))
    assert [a.key for a in source.connector.read(cursor, now + timedelta(seconds=2)).appointments] == ["100"]


def test_a_first_export_still_being_written_is_retried_later(tmp_path):
    now = NIGHT + timedelta(hours=1)
    export(tmp_path, practice(), now - timedelta(seconds=3))
    with pytest.raises(RetryLater, match="still being written"):
        connector(tmp_path).read(None, now)


def test_temporary_and_hidden_files_are_never_read(tmp_path):
    reader = connector(tmp_path, files={"patients": "patients*", "appointments": "appointments*"})
    export(tmp_path, {e: r for e, r in practice().items() if e in ("patients", "appointments")}, NIGHT)
    for name in ("appointments-0002.csv.tmp", "~appointments-0002.csv", ".appointments-0002.csv", "appointments-0002.part"):
        write(tmp_path, name, ["AptNum"], [], NIGHT + timedelta(minutes=5))
    batch = reader.read(None, NIGHT + timedelta(hours=1))
    assert len(batch.appointments) == 31 and not batch.rejected


def test_bad_rows_are_reported_with_file_and_line_and_the_good_rows_are_kept(source):
    rows = source.tables["appointments"]
    rows[0]["Start"] = "31/02/2026"
    rows[1]["Start"] = "Ana Ruiz"
    rows[2]["PatNum"] = "404"
    rows[3]["AptNum"] = ""
    rows[4]["AptNum"] = rows[5]["AptNum"]
    source._export()
    path = source.folder / "appointments-0002.csv"
    path.write_text(path.read_text() + "200,1,1\n")
    touch(path, source.at)
    batch = source.connector.read(None, source.now())
    assert batch.rejected == [
        f"appointments-0002.csv line 2: start: '31/02/2026' is not a date-time in the format {FORMAT}",
        f"appointments-0002.csv line 3: start: the value is not a date-time in the format {FORMAT}",
        "appointments-0002.csv line 5: key: is empty",
        "appointments-0002.csv line 7: key: repeats line 6",
        "appointments-0002.csv line 33: 3 fields where the header has 8",
        "appointments-0002.csv line 4: patient_key: not in patients-0002.csv",
    ]
    assert len(batch.appointments) == 31 - 5 and "106" in by_key(batch.appointments)


def test_a_broken_phone_becomes_none_and_the_patient_is_kept(source):
    cleo = by_key(source.connector.read(None, source.now()).patients)["3"]
    assert cleo.mobile is None and cleo.first_name == "Cleo"


def test_processed_files_are_archived_once_the_next_read_proves_they_were_applied(source):
    cursor = source.connector.read(None, source.now()).cursor
    assert len(list(source.folder.glob("*.csv"))) == 5, "nothing moves before the batch is applied"
    again = source.connector.read(cursor, source.now())
    assert again.cursor == cursor and not again.complete and not again.appointments
    assert not list(source.folder.glob("*.csv"))
    assert sorted(p.name for p in (source.folder / "archive" / "2026-03-02").iterdir()) == [
        "appointments-0001.csv", "clinics-0001.csv", "orders-0001.csv", "patients-0001.csv", "recalls-0001.csv"]
    full = source.connector.read(None, source.now())
    assert full.complete and full.cursor == cursor and len(full.appointments) == 31, "a full read finds the archived export"


def test_a_failed_sync_gets_the_same_export_again(source):
    applied = source.connector.read(None, source.now()).cursor
    cancelled = source.cancel()
    first = source.connector.read(applied, source.now())
    # the sync of `first` failed: its cursor never comes back, the applied one does
    second = source.connector.read(applied, source.now())
    assert [a.key for a in second.appointments] == [cancelled] and second.cursor == first.cursor
    assert (source.folder / "appointments-0002.csv").exists()
    source.connector.read(second.cursor, source.now())
    assert not (source.folder / "appointments-0002.csv").exists()


def test_a_new_process_takes_the_difference_against_the_archived_export(source, tmp_path):
    applied = source.connector.read(None, source.now()).cursor
    source.connector.read(applied, source.now())  # archives export 1
    source.tables["appointments"][0]["Status"] = "Broken"
    source.tables["patients"][6]["Cell"] = "(212) 555-0177"
    export(source.folder, source.tables, source.now(), "0001")  # the PMS writes the same names every night
    batch = connector(source.folder).read(applied, source.now() + timedelta(minutes=5))
    assert not batch.complete
    assert [a.key for a in batch.appointments] == ["100"] and [p.key for p in batch.patients] == ["7"]
    assert (source.folder / "archive" / "2026-03-02" / "appointments-0001.csv").exists()
    connector(source.folder).read(batch.cursor, source.now() + timedelta(minutes=5))
    assert (source.folder / "archive" / "2026-03-02.2" / "appointments-0001.csv").exists(), "same name, same day"
    after = connector(source.folder).read(batch.cursor, source.now() + timedelta(minutes=5))
    assert after.cursor == batch.cursor and not after.complete and not after.appointments


def test_without_the_applied_export_the_next_one_comes_as_a_complete_batch(source):
    applied = source.connector.read(None, source.now()).cursor
    source.connector.read(applied, source.now())
    for path in (source.folder / "archive" / "2026-03-02").iterdir():
        path.unlink()  # someone cleaned the archive
    source.cancel()
    batch = connector(source.folder).read(applied, source.now())
    assert batch.complete and len(batch.appointments) == 31


def test_older_exports_a_newer_one_superseded_are_archived_with_it(source):
    source.cancel(), source.move()
    cursor = source.connector.read(None, source.now()).cursor
    source.connector.read(cursor, source.now())
    assert not list(source.folder.glob("*.csv"))
    assert len(list((source.folder / "archive" / "2026-03-02").iterdir())) == 15


def test_a_patient_or_order_missing_from_the_next_export_is_retired(source):
    applied = source.connector.read(None, source.now()).cursor
    del source.tables["patients"][6]
    source.tables["appointments"] = [a for a in source.tables["appointments"] if a["PatNum"] != "7"]
    source.tables["pickups"] = []
    source._export()
    batch = source.connector.read(applied, source.now())
    assert [(p.key, p.active) for p in batch.patients] == [("7", False)]
    assert [(o.key, o.picked_up) for o in batch.pickups] == [("O1", True)]
    assert sorted(batch.deleted_appointments) == ["106", "113", "120", "127"]


def test_a_row_that_turns_bad_is_reported_and_not_taken_for_deleted(source):
    applied = source.connector.read(None, source.now()).cursor
    source.tables["appointments"][0]["Start"] = "soon"
    source._export()
    batch = source.connector.read(applied, source.now())
    assert not batch.deleted_appointments and not batch.appointments and len(batch.rejected) == 1


def test_a_cursor_from_another_connector_gets_a_complete_batch(source):
    batch = source.connector.read("2026-03-02T06:00:00+00:00", source.now())
    assert batch.complete and len(batch.appointments) == 31


def test_an_empty_appointments_export_is_passed_on_as_a_complete_batch(source):
    source.tables["appointments"] = []
    source._export()
    batch = source.connector.read(None, source.now())
    assert batch.complete and batch.appointments == [] and len(batch.patients) == 8


def test_the_mirror_holds_the_sync_when_an_empty_export_follows_a_full_one(source, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'mirror.db'}")
    migrate(engine)
    clock = VirtualClock(source.now())
    refresh_once(engine, source.connector, clock)
    source.tables["appointments"] = []
    source._export()
    clock.set(source.now())
    for full in (False, True):
        with pytest.raises(SyncHeld, match="30 of 30 upcoming"):
            refresh_once(engine, source.connector, clock, full=full)
    with session(engine) as db:
        statuses = [a.status for a in db.exec(select(Appointment))]
        assert statuses.count(AppointmentStatus.SCHEDULED) == 30 and len(statuses) == 31
        assert [run.outcome for run in db.exec(select(SyncRun).order_by(SyncRun.id))] == ["ok", "held", "held"]
    assert (source.folder / "appointments-0002.csv").exists(), "the held export stays for a person to look at"


def test_a_missing_folder_needs_a_person(tmp_path):
    with pytest.raises(PersonMustAct, match="does not exist"):
        connector(tmp_path / "exports").read(None, NIGHT)
    with pytest.raises(PersonMustAct, match="does not exist"):
        connector(tmp_path / "exports").check()


def test_a_folder_without_an_export_needs_a_person(tmp_path):
    with pytest.raises(PersonMustAct, match=r"no file for patients \(patients\*\.csv\), appointments"):
        connector(tmp_path).read(None, NIGHT)


def test_a_missing_column_names_the_file_the_column_and_the_mapping_key(source):
    columns = COLUMNS | {"appointments": COLUMNS["appointments"] | {"start": "StartTime"}}
    message = ("appointments-0001.csv has no column 'StartTime' for appointments start; name its column in "
               "[connector.columns.appointments] start = \"...\" or fix the export")
    with pytest.raises(PersonMustAct) as raised:
        connector(source.folder, columns=columns).read(None, source.now())
    assert str(raised.value) == message
    with pytest.raises(PersonMustAct):
        connector(source.folder, columns=columns).check()


def test_a_file_in_the_wrong_encoding_needs_a_person(source):
    (source.folder / "patients-0001.csv").write_bytes(b"PatNum,FName,LName\n1,Jos\xe9,M\n")
    touch(source.folder / "patients-0001.csv", source.at)
    with pytest.raises(PersonMustAct, match="is not utf-8-sig text"):
        source.connector.read(None, source.now())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file; permissions cannot be tested as root")
def test_an_unreadable_file_needs_a_person(source):
    (source.folder / "patients-0001.csv").chmod(0)
    with pytest.raises(PersonMustAct, match="permission denied"):
        source.connector.read(None, source.now())


def test_check_describes_the_folder_and_the_newest_files(source):
    line = source.connector.check()
    assert str(source.folder) in line and "appointments-0001.csv (2026-03-02 01:10)" in line


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as raised:
        CsvConnector(tmp_path, files={"patients": "p.csv"}, columns={"patients": {"phone": "Cell"}},
                     statuses={"X": "gone"}, timezone="Mars/Olympus", encoding="klingon")
    assert len(raised.value.problems) == 5


def test_from_config_reads_the_folder_relative_to_the_config_file(write_config, tmp_path):
    config = load_config(write_config(
        '[schedule]\ntimezone = "America/Chicago"\n[clinic]\nname = "Lake Dental"\n'
        '[connector]\ntype = "csv"\nfolder = "exports"\nsettle_seconds = 0\n'
        '[connector.statuses]\nBroken = "cancelled"\n[connector.columns.patients]\nkey = "PatNum"\n'))
    reader = CsvConnector.from_config(config.connector, config)
    assert reader.drop.folder == tmp_path / "exports" and reader.drop.archive == tmp_path / "exports" / "archive"
    assert reader.zone.key == "America/Chicago" and reader.location_name == "Lake Dental"
