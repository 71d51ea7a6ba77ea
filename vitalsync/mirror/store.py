"""Applies a connector's batch to the mirror: upserts, versions, removals — in bulk, streaming.

Records arrive in chunks of plain tuples (``record_chunks``); each chunk costs one SELECT of the
rows it names and at most one executemany INSERT and one UPDATE, so a full sync of half a million
appointments runs at database speed and holds only a few chunks (and the set of keys seen) in
memory. An empty table skips the SELECT and builds its indexes once, at the end.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from operator import itemgetter
from queue import Full, Queue
from threading import Event, Thread

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlmodel import Session

from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.mirror.bulk import Writer
from vitalsync.mirror.forms import stored_form
from vitalsync.mirror.reader import read_elsewhere, regrouped, worth_a_process
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Pickup, Provider, Recall
from vitalsync.sync.connector import (AppointmentRecord, Batch, LocationRecord, PatientRecord, PickupRecord,
                                      ProviderRecord, RecallRecord, StoredForm, record_chunks, stored_chunks)

CHUNK = 2000
AHEAD = 32  #: chunks read ahead of the writer
REMOVED = (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)
APPOINTMENT_FIELDS = [f.name for f in fields(AppointmentRecord)]
MOVING = ("start", "end", "status")  #: a change to these bumps the appointment's version


@dataclass
class Changes:
    rows: int = 0  #: records read from the batch
    changed: int = 0
    removed: int = 0  #: upcoming appointments this batch cancels or deletes


def apply_batch(session: Session, batch: Batch, now: datetime) -> Changes:
    """Write ``batch`` into the mirror (not committed); the caller commits or rolls back."""
    with _no_cycle_collection(batch.complete):
        return _apply(session, batch, now)


@contextmanager
def _no_cycle_collection(bulk: bool):
    """A full sync allocates millions of tuples that live until written; the cycle collector would
    walk them (and the caches) again and again for nothing: ~10-15% of a full sync's CPU. Reference
    counting still frees everything; collection resumes (if it was on) when the batch is applied."""
    was_on = bulk and gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _apply(session: Session, batch: Batch, now: datetime) -> Changes:
    conn = session.connection()
    changes = Changes()
    # Each table's records are read on a thread (and a connection) of their own while the mirror
    # writes; into an empty table, a stream that can be is read in a process of its own
    # (mirror.reader). The appointments, most of a full sync, are read from the start and written
    # first; the other tables are read from the moment the appointments' rows are in, while SQLite
    # builds their indexes. (Reading every table from the start costs more than it overlaps: GIL
    # hand-overs between threads, and with processes the appointments' reader gets less of a core.)
    tables = [(Location, LocationRecord, batch.locations, {}, ()),
              (Provider, ProviderRecord, batch.providers, {}, ()),
              (Patient, PatientRecord, batch.patients, {"updated_at": now}, batch.unreadable_patients),
              (Recall, RecallRecord, batch.recalls, {}, ()),
              (Pickup, PickupRecord, batch.pickups, {}, ())]
    forms = [_form(conn, model.__table__) for model, *_ in tables]
    streams = [_ReadAhead(batch.appointments, AppointmentRecord, depth=AHEAD, form=_form(conn, Appointment.__table__))]

    def read_the_others() -> None:
        streams.extend(_ReadAhead(records, kind, depth=AHEAD, form=form)
                       for (_, kind, records, _, _), form in zip(tables, forms))

    try:
        _apply_appointments(conn, batch, streams[0], now, changes, rows_written=read_the_others)
        for (model, kind, _, stamp, unreadable), records in zip(tables, streams[1:]):
            _upsert(conn, model.__table__, kind, records, stamp, batch.complete, changes, unreadable)
    finally:
        for stream in streams:
            stream.close()
    changes.rows += len(batch.deleted_appointments)
    if batch.complete or batch.opt_outs:
        _replace_pms_opt_outs(session, batch, now, changes)
    return changes


class _ReadAhead:
    """Chunks of record tuples, read on a thread from the moment this is made: the source is read
    while the database writes. The writer takes them by iterating; ``close`` stops the reading.
    Given a ``form``, a stream that can hands its values over in it (``stored`` says whether it did),
    read in a child process when the stream allows and is big (see ``mirror.reader``)."""

    def __init__(self, records, kind: type, depth: int = 4, form: StoredForm | None = None) -> None:
        self.chunks: Queue = Queue(maxsize=depth)
        self.stopped = Event()
        if form is not None and worth_a_process(records):
            self.stored, chunks = True, read_elsewhere(records, CHUNK, form)  # see mirror.reader
        else:
            stored = None if form is None else stored_chunks(records, CHUNK, form)
            self.stored = stored is not None
            chunks = regrouped(stored if stored is not None else record_chunks(records, kind, CHUNK), CHUNK)
        Thread(target=self._produce, args=(chunks,), name="vitalsync-read-ahead", daemon=True).start()

    def _hand_over(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return True
            except Full:
                continue
        return False

    def _produce(self, chunks) -> None:
        try:
            for chunk in chunks:
                if not self._hand_over(chunk):
                    return  # the writer gave up; stop reading
            self._hand_over(None)
        except BaseException as exc:  # handed to the writer, which raises it where the sync can see it
            self._hand_over(exc)
        finally:
            chunks.close()  # a stream read in a process of its own stops it

    def __iter__(self):
        try:
            while (chunk := self.chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self.stopped.set()


def _chunks(records, kind: type) -> _ReadAhead:
    return records if isinstance(records, _ReadAhead) else _ReadAhead(records, kind)


def _form(conn: Connection, table: Table) -> StoredForm | None:
    """An empty table is filled with what the source hands over, as stored when it can: there is
    nothing to compare, so values need not be in the records' form."""
    return stored_form(conn) if _empty(conn, table) else None


@contextmanager
def _bulk(conn: Connection, table: Table, empty: bool):
    """Filling an empty table: build its secondary indexes once at the end, not row by row."""
    indexes = list(table.indexes) if empty else []
    if indexes and conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        # pysqlite opens its transaction only at the first write; a DROP INDEX before it would
        # commit on its own, and a failed sync would leave the table without its index
        conn.exec_driver_sql("BEGIN")
    for index in indexes:
        index.drop(conn)
    yield  # on an error the caller rolls back, and the dropped indexes come back with it
    for index in indexes:
        index.create(conn)


def _upsert(conn: Connection, table: Table, kind: type, records, stamp: dict, complete: bool, changes: Changes,
            unreadable=()) -> None:
    seen: set[str] = set(unreadable)
    empty = _empty(conn, table)
    with _bulk(conn, table, empty):
        _upsert_chunks(conn, table, kind, records, stamp, empty, seen, changes)
    if complete and not empty:  # an empty table had nothing the batch could lack
        _retire_missing(conn, table, seen, changes)


def _upsert_chunks(conn, table, kind, records, stamp, empty, seen, changes) -> None:
    names = [f.name for f in fields(kind)]
    writer = Writer(conn, table, names + list(stamp))
    extra = tuple(stamp.values())
    chunks = _chunks(records, kind)
    for chunk in chunks:
        wanted = dict(zip(map(itemgetter(0), chunk), chunk))  # a key named twice: the last one
        if empty:
            inserts, updates = list(wanted.values()), []
        else:
            existing = {row[0]: tuple(row) for row in conn.execute(
                select(*(table.c[name] for name in names)).where(table.c.key.in_(list(wanted))))}
            inserts = [values for key, values in wanted.items() if key not in existing]
            updates = [values for key, values in wanted.items() if key in existing and existing[key] != values]
        writer.insert(inserts, extra, stored=chunks.stored)
        writer.update(updates, extra)
        changes.rows += len(chunk)
        changes.changed += len(inserts) + len(updates)
        if not empty:  # an empty table retires nothing: no need to hold every key
            seen.update(wanted)


def _retire_missing(conn: Connection, table: Table, seen: set[str], changes: Changes) -> None:
    """A complete batch lacks rows the PMS no longer has: patients and recalls go inactive, orders picked up."""
    flag, value = ("active", False) if "active" in table.c else ("picked_up", True) if "picked_up" in table.c else (None, None)
    if flag is None:
        return
    current = conn.execute(select(table.c.key).where(table.c[flag] != value)).scalars().all()
    missing = [key for key in current if key not in seen]
    for start in range(0, len(missing), CHUNK):
        conn.execute(update(table).where(table.c.key.in_(missing[start:start + CHUNK])).values({flag: value}))
    changes.changed += len(missing)


def _apply_appointments(conn: Connection, batch: Batch, records, now: datetime, changes: Changes,
                        rows_written=lambda: None) -> None:
    table = Appointment.__table__
    empty = _empty(conn, table)
    seen: set[str] = set(batch.unreadable_appointments)
    with _bulk(conn, table, empty):
        _appointment_chunks(conn, records, now, changes, empty, seen)
        rows_written()  # the indexes are built next
    if not empty:  # an empty table had nothing to remove
        _remove_gone(conn, batch, now, changes, seen)


def _appointment_chunks(conn: Connection, records, now: datetime, changes: Changes, empty: bool, seen: set[str]) -> None:
    table = Appointment.__table__
    every = [table.c[name] for name in APPOINTMENT_FIELDS] + [table.c.version, table.c.previous_start, table.c.changed_at]
    writer = Writer(conn, table, APPOINTMENT_FIELDS + ["version", "previous_start", "first_seen_at", "changed_at"])
    updater = Writer(conn, table, APPOINTMENT_FIELDS + ["version", "previous_start", "changed_at"])
    width = len(APPOINTMENT_FIELDS)
    chunks = _chunks(records, AppointmentRecord)
    for chunk in chunks:
        if empty:  # nothing to compare, nothing to remove later: no per-row work here
            inserts, updates = chunk, []
        else:
            keys = list(map(itemgetter(0), chunk))
            existing = {row[0]: row for row in conn.execute(select(*every).where(table.c.key.in_(keys)))}
            inserts, updates = [], []
            for values in chunk:
                old = existing.get(values[0])
                if old is None:
                    inserts.append(values)
                elif tuple(old[:width]) != values:
                    updates.append(_changed(old._mapping, dict(zip(APPOINTMENT_FIELDS, values)), now, changes))
        writer.insert(inserts, (1, None, now, now), stored=chunks.stored)
        updater.update(updates)
        changes.rows += len(chunk)
        changes.changed += len(inserts) + len(updates)
        if not empty:  # an empty table removes nothing: no need to hold every key
            seen.update(keys)


def _remove_gone(conn: Connection, batch: Batch, now: datetime, changes: Changes, seen: set[str]) -> None:
    """Appointments a complete batch lacks, or an incremental one names as deleted, become deleted."""
    table = Appointment.__table__
    if batch.complete:
        current = conn.execute(select(table.c.key).where(table.c.status != AppointmentStatus.DELETED.value)).scalars()
        keys = [key for key in current if key not in seen]
    else:
        keys = list(batch.deleted_appointments)
    gone = [row for start in range(0, len(keys), CHUNK) for row in conn.execute(
        select(table.c.key, table.c.status, table.c.start, table.c.version)
        .where(table.c.key.in_(keys[start:start + CHUNK]), table.c.status != AppointmentStatus.DELETED.value))]
    if gone:
        for row in gone:
            changes.removed += _upcoming(row.status, row.start, now)
        conn.execute(update(table).where(table.c.key == bindparam("b_key")).values(
            status=AppointmentStatus.DELETED.value, version=bindparam("b_version"), changed_at=bindparam("b_at")),
            [{"b_key": row.key, "b_version": row.version + 1, "b_at": now} for row in gone])
        changes.changed += len(gone)


def _empty(conn: Connection, table: Table) -> bool:
    """A first sync into an empty table needs no look-up of existing rows."""
    return conn.execute(select(table.c.key).limit(1)).first() is None


def _changed(old, values: dict, now: datetime, changes: Changes) -> tuple:
    """The new row of a changed appointment: its version moves on when its time or status does."""
    row = dict(values, version=old["version"], previous_start=old["previous_start"], changed_at=old["changed_at"])
    if any(old[name] != values[name] for name in MOVING):
        row["version"] += 1
        row["changed_at"] = now
        if values["status"] in REMOVED and old["status"] not in REMOVED:
            changes.removed += _upcoming(old["status"], old["start"], now)
        elif old["start"] != values["start"]:
            row["previous_start"] = old["start"]
    return tuple(row.values())


def _upcoming(status: str, start: datetime, now: datetime) -> int:
    return int(status == AppointmentStatus.SCHEDULED and start > now)


def _replace_pms_opt_outs(session: Session, batch: Batch, now: datetime, changes: Changes) -> None:
    """The PMS's opt-outs as the batch has them (a complete batch also takes back the ones it lacks),
    in two statements: a practice has thousands, and an ORM object each costs a flush per row."""
    conn, table = session.connection(), OptOut.__table__
    current = {(key, channel): number for number, key, channel in conn.execute(
        select(table.c.id, table.c.patient_key, table.c.channel).where(table.c.source == "pms"))}
    wanted = {(record.patient_key, Channel(record.channel).value) for record in batch.opt_outs}
    changes.rows += len(wanted)
    new = [{"patient_key": key, "channel": channel, "source": "pms", "at": now}
           for key, channel in wanted - current.keys()]
    if new:
        conn.execute(insert(table), new)
    if batch.complete:
        gone = [current[key] for key in current.keys() - wanted]
        for start in range(0, len(gone), CHUNK):
            conn.execute(delete(table).where(table.c.id.in_(gone[start:start + CHUNK])))
