"""The mirror's bookkeeping: versions, previous times, removals, and rows a source could not read."""

from datetime import timedelta

from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.mirror.tables import Appointment, Patient


def rows(runtime) -> dict[str, Appointment]:
    with session(runtime.engine) as db:
        return {a.key: a for a in db.exec(select(Appointment))}


def test_a_move_bumps_the_version_and_keeps_the_previous_start(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    connector.change("A1", start=ny(5, 11), end=ny(5, 11) + timedelta(minutes=30))
    report = runtime.sync_once(full=True)
    moved = rows(runtime)["A1"]
    assert (moved.version, moved.previous_start, moved.start) == (2, ny(4, 10), ny(5, 11))
    assert report.changed == 1 and report.removed == 0


def test_a_second_identical_sync_changes_nothing(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    assert runtime.sync_once(full=True).changed == 0


def test_an_appointment_missing_from_a_full_read_is_deleted_and_counted(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    connector.delete("A1")
    report = runtime.sync_once(full=True)
    assert rows(runtime)["A1"].status == AppointmentStatus.DELETED and report.removed == 1


def test_an_unreadable_appointment_of_a_full_read_is_not_deleted(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    connector.delete("A1")
    connector.practice.unreadable_appointments = ["A1"]
    runtime.sync_once(full=True)
    assert rows(runtime)["A1"].status == AppointmentStatus.SCHEDULED


def test_a_patient_missing_from_a_full_read_goes_inactive(runtime, connector):
    open_practice(connector, patient("1", "Ann"), patient("2", "Ben"))
    runtime.sync_once()
    connector.practice.patients = [p for p in connector.practice.patients if p.key != "2"]
    runtime.sync_once(full=True)
    with session(runtime.engine) as db:
        assert db.get(Patient, "2").active is False and db.get(Patient, "1").active is True
