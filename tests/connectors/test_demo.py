"""The demo connector passes the same conformance suite as every real connector."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from vitalsync.core.vocab import AppointmentStatus
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.demo import DemoConnector
from vitalsync_connectors.demo.practice import Change

START = date(2026, 3, 2)


class DemoSource:
    """Front-desk edits made at a moving 'now', recorded as the demo's own change events."""

    def __init__(self) -> None:
        self.connector = DemoConnector(seed=5, start=START, patients=60, weeks=2)
        self.at = datetime(2026, 3, 2, 13, 0, tzinfo=timezone.utc)
        self.used: set[str] = set()

    def now(self) -> datetime:
        return self.at

    def _upcoming(self):
        practice = self.connector.practice
        for appointment in practice.appointments:
            if appointment.start > self.at + timedelta(days=2) and appointment.key not in self.used:
                self.used.add(appointment.key)
                return appointment
        raise AssertionError("no upcoming appointment left")

    def _edit(self, record, deleted: bool = False) -> str:
        self.at += timedelta(minutes=1)
        practice = self.connector.practice
        practice.changes.append(Change(self.at - timedelta(seconds=30), record, deleted))
        practice.changes.sort(key=lambda c: c.at)
        self.connector.__dict__.pop("_change_times", None)  # the cached index of change times
        return record.key

    def cancel(self) -> str:
        return self._edit(replace(self._upcoming(), status=AppointmentStatus.CANCELLED))

    def move(self) -> str:
        appointment = self._upcoming()
        return self._edit(replace(appointment, start=appointment.start + timedelta(days=1),
                                  end=appointment.end + timedelta(days=1)))

    def delete(self) -> str:
        return self._edit(self._upcoming(), deleted=True)


class TestDemoContract(ConnectorContract):
    @pytest.fixture
    def source(self):
        return DemoSource()
