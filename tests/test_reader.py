"""A stream read in a process of its own (``mirror.reader``): the same rows, its errors, its end."""

from __future__ import annotations

import os
import threading
from dataclasses import astuple
from datetime import timedelta

import pytest
from sqlalchemy import inspect

from tests.test_mirror import rows
from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.errors import RetryLater
from vitalsync.mirror import store
from vitalsync.mirror.forms import SQLITE_FORM
from vitalsync.mirror.reader import read_elsewhere, regrouped
from vitalsync.mirror.tables import Appointment
from vitalsync.sync.connector import AppointmentRecord, Batch


class Stream:
    """A picklable source stream of appointment records, in uneven chunks of three, naming every
    fifth row rejected; it breaks (``fail_at``), kills its process (``die_at``) or never ends."""

    own_process = True
    estimated_rows = 1_000_000  # as big as a real practice's appointments: worth a process

    def __init__(self, records, *, fail_at: int | None = None, die_at: int | None = None, endless: bool = False):
        self.records, self.fail_at, self.die_at, self.endless = records, fail_at, die_at, endless
        self.rejected: list[str] = []

    def tuples(self, size: int, form=None):
        number = 0
        while True:
            for first in range(0, len(self.records), 3):
                chunk = []
                for record in self.records[first:first + 3]:
                    if number == self.fail_at:
                        raise RetryLater("the PMS went away mid-read")
                    if number == self.die_at:
                        os._exit(7)
                    if number % 5 == 0 and f"row {number}" not in self.rejected:
                        self.rejected.append(f"row {number}")
                    key, patient_key, location_key, start, end, status, provider_key, kind = astuple(record)
                    chunk.append((key, patient_key, location_key, form.instant(start), form.instant(end), status.value,
                                  provider_key, kind))
                    number += 1
                yield chunk
            if not self.endless:
                return


def appointments(count: int) -> list[AppointmentRecord]:
    return [AppointmentRecord(f"A{n}", "1", "1", ny(3, 8) + timedelta(minutes=15 * n),
                              ny(3, 8) + timedelta(minutes=15 * n + 30)) for n in range(count)]


def test_the_child_hands_over_the_same_rows_in_whole_chunks_and_its_rejections():
    here, there = Stream(appointments(20)), Stream(appointments(20))
    expected = list(regrouped(here.tuples(4, SQLITE_FORM), 4))
    there.rejected.append("row 0")  # named before: not named twice
    assert list(read_elsewhere(there, 4, SQLITE_FORM)) == expected
    assert [len(chunk) for chunk in expected] == [4] * 5
    assert there.rejected == here.rejected == ["row 0", "row 5", "row 10", "row 15"]


def test_an_error_in_the_child_is_raised_in_the_parent_after_the_rows_before_it():
    got = []
    with pytest.raises(RetryLater, match="went away mid-read"):
        for chunk in read_elsewhere(Stream(appointments(20), fail_at=9), 4, SQLITE_FORM):
            got.append(chunk)
    assert [len(chunk) for chunk in got] == [4, 4]


def test_a_child_that_dies_is_a_retry_later():
    with pytest.raises(RetryLater, match="exit status 7"):
        list(read_elsewhere(Stream(appointments(20), die_at=6), 4, SQLITE_FORM))


def test_closing_the_stream_early_ends_the_child():
    chunks = read_elsewhere(Stream(appointments(20), endless=True), 4, SQLITE_FORM)
    next(chunks)
    closing = threading.Thread(target=chunks.close)
    closing.start()
    closing.join(timeout=20)
    assert not closing.is_alive()  # close() waits for the child, so it was stopped


def test_a_first_sync_read_in_a_child_stores_what_the_records_hold(runtime, connector, monkeypatch):
    open_practice(connector, patient("1", "Ann"))
    for day in range(3, 9):
        book(connector, f"A{day}", "1", ny(day, 10))
    runtime.sync_once()
    in_process = rows(runtime)

    read = connector.read
    stream = Stream(list(connector.practice.appointments))
    monkeypatch.setattr(connector, "read", lambda since, now: Batch(
        complete=True, cursor="x", appointments=stream, patients=list(connector.practice.patients),
        locations=read(since, now).locations, rejected=stream.rejected))
    with runtime.engine.begin() as conn:  # empty again: the bulk path, where a child reads
        conn.exec_driver_sql("DELETE FROM appointment")
    report = runtime.sync_once(full=True)
    assert report.rejected == 2  # rows 0 and 5, named by the child
    child = rows(runtime)
    assert {key: (a.start, a.end, a.status, a.version) for key, a in child.items()} == {
        key: (a.start, a.end, a.status, a.version) for key, a in in_process.items()}


def test_a_first_sync_whose_child_fails_leaves_the_empty_mirror_with_its_indexes(runtime, connector, monkeypatch):
    open_practice(connector, patient("1", "Ann"))
    for day in range(3, 9):
        book(connector, f"A{day}", "1", ny(day, 10))
    stream = Stream(list(connector.practice.appointments), fail_at=4)
    monkeypatch.setattr(store, "CHUNK", 2)  # the failure comes after some chunks were written
    monkeypatch.setattr(connector, "read", lambda since, now: Batch(complete=True, cursor="x", appointments=stream,
                                                                    patients=list(connector.practice.patients)))
    with pytest.raises(RetryLater, match="went away mid-read"):
        runtime.sync_once(full=True)
    assert rows(runtime) == {}
    assert {index.name for index in Appointment.__table__.indexes} <= {
        index["name"] for index in inspect(runtime.engine).get_indexes("appointment")}


def test_a_small_stream_is_read_at_home(runtime, connector, monkeypatch):
    """A process costs ~0.1 s to start: a practice's few thousand rows are read in a thread."""
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    stream = Stream(list(connector.practice.appointments))
    stream.estimated_rows = 2_000
    monkeypatch.setattr(store, "read_elsewhere", lambda *args: pytest.fail("a process for a small stream"))
    monkeypatch.setattr(connector, "read", lambda since, now: Batch(complete=True, cursor="x", appointments=stream,
                                                                    patients=list(connector.practice.patients)))
    assert runtime.sync_once(full=True).changed == 2
    assert set(rows(runtime)) == {"A1"}
