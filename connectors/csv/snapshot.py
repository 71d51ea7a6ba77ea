"""One export read into records, and what changed between two exports.

Every export is a full snapshot of the PMS, so an incremental batch is the difference between the
export the caller applied last and the newest one: rows added or changed, appointments gone
(``deleted_appointments``), patients and recalls gone (inactive), orders gone (picked up). A row
that could not be read this time is *held*: it is reported and never taken for gone.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import Batch, LocationRecord
from vitalsync_connectors.csv.files import ExportFile, failure, stat
from vitalsync_connectors.csv.mapping import DEFAULT_LOCATION, FIELDS, Mapper, Unusable, positions

ENTITIES = tuple(FIELDS)  # in reading order: patients before the rows that name them
NAMES_A_PATIENT = ("appointments", "recalls", "pickups")
#: What a row missing from the newer export becomes (appointments go to ``deleted_appointments``).
GONE = {"patients": {"active": False}, "recalls": {"active": False}, "pickups": {"picked_up": True}}


@dataclass
class FileRows:
    """The readable rows of one file, by key, and why the others were not."""

    name: str
    records: dict = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  #: keys of rejected rows


def read_file(file: ExportFile, mapper: Mapper, columns: dict[str, str], *, encoding: str, delimiter: str) -> FileRows:
    rows, line = FileRows(file.path.name), 0
    try:
        with file.path.open(encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next((row for row in reader if any(cell.strip() for cell in row)), None)
            at = positions(file.entity, rows.name, header, columns) if header else {}
            for row in reader:
                line = reader.line_num
                if any(cell.strip() for cell in row):
                    _add(rows, line, row, len(header), at, lambda get: mapper.record(file.entity, get))
    except UnicodeDecodeError as exc:
        raise PersonMustAct(f"{file.path} is not {encoding} text (byte {exc.start}); set [connector] encoding "
                            "to the export's, e.g. \"cp1252\"") from None
    except csv.Error as exc:
        raise PersonMustAct(f"{file.path} line {line + 1}: {exc}; check the export and [connector] delimiter") from None
    except OSError as exc:
        raise failure(exc, file.path) from None
    if (again := stat(file.path, file.entity)) is None or again.identity != file.identity:
        raise RetryLater(f"{file.path} changed while it was read; it is read again once it has settled")
    return rows


def _add(rows: FileRows, line: int, row: list[str], width: int, at: dict[str, int], record) -> None:
    where = f"{rows.name} line {line}"
    if len(row) != width:
        rows.rejected.append(f"{where}: {len(row)} fields where the header has {width}")
        return
    key = row[at["key"]].strip()
    try:
        record = record(lambda field: row[at[field]] if field in at else None)
    except Unusable as exc:
        rows.rejected.append(f"{where}: {exc}")
        rows.held.add(key)
        return
    if key in rows.records:
        rows.rejected.append(f"{where}: key: repeats line {rows.lines[key]}")
        return
    rows.records[key], rows.lines[key] = record, line


@dataclass
class Snapshot:
    """A whole export, cleaned: records by entity and key."""

    records: dict[str, dict] = field(default_factory=lambda: {entity: {} for entity in ENTITIES})
    rejected: list[str] = field(default_factory=list)
    held: dict[str, set[str]] = field(default_factory=lambda: {entity: set() for entity in ENTITIES})

    def batch(self, cursor: str) -> Batch:
        """The export as a complete batch."""
        return Batch(complete=True, cursor=cursor, rejected=list(self.rejected),
                     unreadable_appointments=sorted(self.held["appointments"]),
                     unreadable_patients=sorted(self.held["patients"]),
                     **{entity: list(records.values()) for entity, records in self.records.items()})

    def changes_since(self, previous: Snapshot, cursor: str) -> Batch:
        """What changed since ``previous``, as an incremental batch."""
        batch = Batch(complete=False, cursor=cursor, rejected=list(self.rejected))
        for entity in ENTITIES:
            now, before = self.records[entity], previous.records[entity]
            changed = [record for key, record in now.items() if before.get(key) != record]
            gone = [record for key, record in before.items() if key not in now and key not in self.held[entity]]
            if entity == "appointments":
                batch.deleted_appointments = [r.key for r in gone if r.status is not AppointmentStatus.DELETED]
            elif entity in GONE:
                changed += [retired for r in gone if (retired := replace(r, **GONE[entity])) != r]
            setattr(batch, entity, changed)
        return batch


def combine(files: dict[str, FileRows], *, location_name: str, zone: ZoneInfo) -> Snapshot:
    """The files of one export as a snapshot; rows naming a patient the export lacks are rejected."""
    snapshot = Snapshot()
    for entity in (e for e in ENTITIES if e in files):
        rows = files[entity]
        snapshot.rejected += rows.rejected
        snapshot.held[entity] |= rows.held
        records = rows.records
        if entity in NAMES_A_PATIENT:
            patients, records = snapshot.records["patients"], {}
            for key, record in rows.records.items():
                if record.patient_key in patients:
                    records[key] = record
                else:
                    snapshot.rejected.append(f"{rows.name} line {rows.lines[key]}: patient_key: not in {files['patients'].name}")
                    snapshot.held[entity].add(key)
        snapshot.records[entity] = records
    locations = snapshot.records["locations"]
    if DEFAULT_LOCATION not in locations and any(
            record.location_key == DEFAULT_LOCATION for entity in ("appointments", "pickups")
            for record in snapshot.records[entity].values()):
        locations[DEFAULT_LOCATION] = LocationRecord(DEFAULT_LOCATION, location_name, zone.key)
    return snapshot
