"""The mirror's bookkeeping: versions, previous times, removals, and rows a source could not read."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.errors import RetryLater
from vitalsync.mirror import store
from vitalsync.mirror.refresh import upcoming_query
from vitalsync.sync.connector import Batch, OptOutRecord
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.mirror.tables import Appointment, OptOut, Patient


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


def test_an_unreadable_patient_of_a_full_read_stays_active(runtime, connector):
    open_practice(connector, patient("1", "Ann"), patient("2", "Ben"))
    runtime.sync_once()
    connector.practice.patients = [p for p in connector.practice.patients if p.key != "2"]
    connector.practice.unreadable_patients = ["2"]
    runtime.sync_once(full=True)
    with session(runtime.engine) as db:
        assert db.get(Patient, "2").active is True


def test_a_full_sync_into_an_empty_mirror_stores_what_a_record_holds(runtime, connector):
    """The bulk path (tuples, converted a column at a time) keeps every value: enums, flags, times."""
    open_practice(connector, patient("1", "Ann", sms_ok=False, voice_ok=True, guarantor_key="1", language="es"))
    booked = book(connector, "A1", "1", ny(4, 10))
    connector.change("A1", status=AppointmentStatus.COMPLETED, provider_key=None)
    runtime.sync_once()
    with session(runtime.engine) as db:
        stored = db.get(Patient, "1")
        assert (stored.sms_ok, stored.voice_ok, stored.guarantor_key, stored.language) == (False, True, "1", "es")
        appointment = db.get(Appointment, "A1")
    assert appointment.status == "completed" and type(appointment.status) is str
    assert (appointment.start, appointment.end, appointment.provider_key) == (booked.start, booked.end, None)
    assert runtime.sync_once(full=True).changed == 0  # what was written reads back equal


class FailingStream:
    """A source's appointment stream that breaks after some rows, as a dropped connection does."""

    def __init__(self, rows, after: int) -> None:
        self.rows, self.after = rows, after

    def __iter__(self):
        for number, row in enumerate(self.rows):
            if number == self.after:
                raise RetryLater("the PMS went away mid-read")
            yield row


def test_a_source_failing_in_the_middle_of_a_stream_leaves_the_mirror_as_it_was(runtime, connector, monkeypatch):
    open_practice(connector, patient("1", "Ann"))
    for day in range(3, 9):
        book(connector, f"A{day}", "1", ny(day, 10))
    runtime.sync_once()
    before = {key: (a.start, a.version) for key, a in rows(runtime).items()}
    moved = [replace(a, start=a.start + timedelta(hours=1), end=a.end + timedelta(hours=1))
             for a in connector.practice.appointments]
    stream = FailingStream(moved, after=4)
    monkeypatch.setattr(store, "CHUNK", 2)  # the failure comes after some chunks were written
    monkeypatch.setattr(connector, "read", lambda since, now: Batch(complete=True, cursor="x", appointments=stream,
                                                                    patients=list(connector.practice.patients)))
    with pytest.raises(RetryLater):
        runtime.sync_once(full=True)
    assert {key: (a.start, a.version) for key, a in rows(runtime).items()} == before


def test_a_first_sync_failing_mid_stream_leaves_the_empty_mirror_with_its_indexes(runtime, connector, monkeypatch):
    """An empty table's indexes are dropped for the bulk load: a failure must bring them back."""
    open_practice(connector, patient("1", "Ann"))
    for day in range(3, 9):
        book(connector, f"A{day}", "1", ny(day, 10))
    stream = FailingStream(list(connector.practice.appointments), after=4)
    monkeypatch.setattr(store, "CHUNK", 2)
    monkeypatch.setattr(connector, "read", lambda since, now: Batch(complete=True, cursor="x", appointments=stream,
                                                                    patients=FailingStream(connector.practice.patients, after=5)))
    with pytest.raises(RetryLater):
        runtime.sync_once(full=True)
    assert rows(runtime) == {}
    indexes = {index["name"] for table in ("appointment", "patient")
               for index in inspect(runtime.engine).get_indexes(table)}
    assert {index.name for table in (Appointment, Patient) for index in table.__table__.indexes} <= indexes


def test_the_pms_s_opt_outs_follow_each_complete_read_and_a_reply_s_stop_stays(runtime, connector):
    open_practice(connector, patient("1", "Ann"), patient("2", "Ben"))
    connector.practice.opt_outs = [OptOutRecord("1", Channel.SMS), OptOutRecord("2", Channel.EMAIL)]
    runtime.sync_once()
    with session(runtime.engine) as db:
        db.add(OptOut(channel="sms", address="+12125550002", patient_key="2", source="reply", at=ny(2, 9)))
        db.commit()
    connector.practice.opt_outs = [OptOutRecord("1", Channel.SMS), OptOutRecord("2", Channel.SMS)]
    runtime.sync_once(full=True)
    with session(runtime.engine) as db:
        held = {(o.patient_key, o.channel, o.source) for o in db.exec(select(OptOut))}
    assert held == {("1", "sms", "pms"), ("2", "sms", "pms"), ("2", "sms", "reply")}


def test_the_count_of_upcoming_appointments_before_each_sync_reads_only_an_index(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    with runtime.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            pytest.skip("SQLite's planner: PostgreSQL plans by its statistics")
        compiled = upcoming_query(ny(3, 9)).compile(conn)
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())).all()
    assert "COVERING INDEX ix_appointment_start_status" in " ".join(row[-1] for row in plan)
