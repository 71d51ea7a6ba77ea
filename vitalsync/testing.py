"""The connector conformance suite: every connector, the demo one included, runs it in a few lines.

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def source(self, ...):
            return MySource(...)   # a ContractSource over a real server holding a small practice

The suite checks that the connector is installed under its name with its ``Options``, then reads
the source as vitalsync would and checks what the connector promises: keys unique, required fields
present, times time-zone aware, phones in E.164, cancellations and deletes reported, and an
incremental read returning only what changed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Protocol

import pytest

from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import Batch, Connector, ConnectorOptions
from vitalsync.sync.registry import GROUP, connector_class

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class ContractSource(Protocol):
    """A real source with a small practice in it, and the means to change it as a PMS user would."""

    connector: Connector

    def now(self) -> datetime:
        """The time to read at (aware); the source's changes happen before it."""

    def cancel(self) -> str:
        """Cancel (or break) one upcoming appointment in the source; return its key."""

    def move(self) -> str:
        """Move one upcoming appointment to another time; return its key."""

    def delete(self) -> str:
        """Delete one upcoming appointment; return its key."""


def full(source: ContractSource) -> Batch:
    return source.connector.read(None, source.now())


class ConnectorContract:
    """Subclass as ``Test<Name>Contract`` and give it a ``source`` fixture."""

    def test_it_is_installed_under_its_name_with_its_options(self, source):
        kind = type(source.connector)
        assert connector_class(kind.name) is kind, f"the entry point {kind.name!r} in group {GROUP} names {kind.__name__}"
        assert isinstance(kind.Options, type) and issubclass(kind.Options, ConnectorOptions)
        assert callable(kind.from_config)
        undescribed = [key for key, field in kind.Options.model_fields.items() if not field.description]
        assert not undescribed, f"keys without a description (config example): {undescribed}"

    def test_a_full_read_is_complete_and_has_a_cursor(self, source):
        batch = full(source)
        assert batch.complete and batch.cursor
        assert batch.patients and batch.appointments

    def test_keys_are_unique(self, source):
        batch = full(source)
        for name in ("locations", "providers", "patients", "appointments", "recalls", "pickups"):
            keys = [row.key for row in getattr(batch, name)]
            assert len(keys) == len(set(keys)), f"duplicate {name} keys"

    def test_required_fields_are_present(self, source):
        batch = full(source)
        patients = {p.key for p in batch.patients}
        for appointment in batch.appointments:
            assert appointment.key and appointment.location_key and appointment.patient_key
            assert appointment.patient_key in patients, f"appointment {appointment.key} names an unknown patient"
            assert appointment.end > appointment.start
            assert isinstance(appointment.status, AppointmentStatus)
        for patient in batch.patients:
            assert patient.key and patient.language

    def test_times_are_time_zone_aware(self, source):
        batch = full(source)
        for appointment in batch.appointments:
            assert appointment.start.utcoffset() is not None and appointment.end.utcoffset() is not None
        for pickup in batch.pickups:
            assert pickup.ready_at.utcoffset() is not None

    def test_phones_are_e164_and_emails_plausible(self, source):
        for patient in full(source).patients:
            for phone in (patient.mobile, patient.landline):
                assert phone is None or E164.match(phone), f"patient {patient.key}: phone not in E.164"
            assert patient.email is None or "@" in patient.email

    def test_an_incremental_read_returns_only_what_changed(self, source):
        cursor = full(source).cursor
        moved, cancelled, deleted = source.move(), source.cancel(), source.delete()
        batch = source.connector.read(cursor, source.now())
        assert not batch.complete and batch.cursor
        changed = {a.key: a for a in batch.appointments}
        assert moved in changed, "a moved appointment is reported"
        assert cancelled in changed and changed[cancelled].status in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)
        assert deleted in batch.deleted_appointments or changed.get(deleted, None) is not None and \
            changed[deleted].status is AppointmentStatus.DELETED, "a deleted appointment is reported"
        assert set(changed) - {moved, cancelled, deleted} == set(), "only what changed is returned"

    def test_an_incremental_read_with_no_changes_is_empty(self, source):
        cursor = full(source).cursor
        batch = source.connector.read(cursor, source.now() + timedelta(seconds=1))
        assert not batch.appointments and not batch.deleted_appointments

    def test_a_full_read_after_changes_reflects_them(self, source):
        cancelled, deleted = source.cancel(), source.delete()
        batch = full(source)
        statuses = {a.key: a.status for a in batch.appointments}
        assert statuses.get(cancelled) in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)
        assert statuses.get(deleted, AppointmentStatus.DELETED) is AppointmentStatus.DELETED

    def test_check_describes_the_source(self, source):
        assert isinstance(source.connector.check(), str)


__all__ = ["ConnectorContract", "ContractSource", "pytest"]
