"""Applies a connector's batch to the mirror: upserts, versions, removals."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlmodel import Session, SQLModel, select

from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Pickup, Provider, Recall
from vitalsync.sync.connector import AppointmentRecord, Batch

REMOVED = (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)


@dataclass
class Changes:
    changed: int = 0
    removed: int = 0  #: upcoming appointments this batch cancels or deletes


def apply_batch(session: Session, batch: Batch, now: datetime) -> Changes:
    """Write ``batch`` into the mirror (not committed); the caller commits or rolls back."""
    changes = Changes()
    for model, records, extra in (
        (Location, batch.locations, {}),
        (Provider, batch.providers, {}),
        (Patient, batch.patients, {"updated_at": now}),
        (Recall, batch.recalls, {}),
        (Pickup, batch.pickups, {}),
    ):
        changes.changed += _upsert_plain(session, model, records, extra, remove_missing=batch.complete)
    _apply_appointments(session, batch, now, changes)
    if batch.complete or batch.opt_outs:
        _replace_pms_opt_outs(session, batch, now)
    return changes


def _upsert_plain(session: Session, model: type[SQLModel], records, extra: dict, *, remove_missing: bool) -> int:
    existing = {row.key: row for row in session.exec(select(model))} if records or remove_missing else {}
    changed = 0
    for record in records:
        values = {f.name: getattr(record, f.name) for f in fields(record)} | extra
        row = existing.pop(record.key, None)
        if row is None:
            session.add(model(**values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items() if k not in extra):
            for k, v in values.items():
                setattr(row, k, v)
            changed += 1
    if remove_missing:
        for row in existing.values():
            if hasattr(row, "active") and row.active:
                row.active = False
                changed += 1
            elif isinstance(row, Pickup) and not row.picked_up:
                row.picked_up = True
                changed += 1
    return changed


def _apply_appointments(session: Session, batch: Batch, now: datetime, changes: Changes) -> None:
    keys = [record.key for record in batch.appointments] + list(batch.deleted_appointments)
    if batch.complete:
        existing = {row.key: row for row in session.exec(select(Appointment))}
    else:
        existing = {}
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            existing |= {row.key: row for row in session.exec(select(Appointment).where(Appointment.key.in_(part)))}
    for record in batch.appointments:
        row = existing.pop(record.key, None)
        if row is None:
            session.add(Appointment(**_values(record), first_seen_at=now, changed_at=now))
            changes.changed += 1
        elif _update(row, record, now, changes):
            changes.changed += 1
    gone = existing.values() if batch.complete else (existing[k] for k in batch.deleted_appointments if k in existing)
    for row in gone:
        if row.status != AppointmentStatus.DELETED:
            _remove(row, AppointmentStatus.DELETED, now, changes)


def _values(record: AppointmentRecord) -> dict:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _update(row: Appointment, record: AppointmentRecord, now: datetime, changes: Changes) -> bool:
    values = _values(record)
    if all(getattr(row, name) == value for name, value in values.items()):
        return False
    if record.status != row.status and record.status in REMOVED:
        _remove(row, record.status, now, changes)
        changes.changed -= 1  # counted once, by the caller
    elif row.start != record.start or row.end != record.end or row.status != record.status:
        row.version += 1
        row.changed_at = now
        if row.start != record.start:
            row.previous_start = row.start
    for name, value in values.items():
        setattr(row, name, value)
    return True


def _remove(row: Appointment, status: AppointmentStatus, now: datetime, changes: Changes) -> None:
    if row.status == AppointmentStatus.SCHEDULED and row.start > now:
        changes.removed += 1
    row.status = status
    row.version += 1
    row.changed_at = now
    changes.changed += 1


def _replace_pms_opt_outs(session: Session, batch: Batch, now: datetime) -> None:
    current = {(row.patient_key, row.channel): row for row in session.exec(select(OptOut).where(OptOut.source == "pms"))}
    wanted = {(record.patient_key, Channel(record.channel).value) for record in batch.opt_outs}
    for key in wanted - current.keys():
        session.add(OptOut(patient_key=key[0], channel=key[1], source="pms", at=now))
    if batch.complete:
        for key in current.keys() - wanted:
            session.delete(current[key])
