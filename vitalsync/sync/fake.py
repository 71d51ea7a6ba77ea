"""An in-memory connector for tests: it serves whatever practice the test puts in it.

Tests change ``practice`` between syncs (cancel, move, delete) the way a PMS would change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.sync.connector import AppointmentRecord, Batch


@dataclass
class FakeConnector:
    name: str = "fake"
    practice: Batch = field(default_factory=lambda: Batch(complete=True))
    fail_with: Exception | None = None  #: raised by the next reads, e.g. RetryLater("PMS offline")
    reads: int = 0
    written: list[tuple[str, str]] = field(default_factory=list)  #: (appointment key, answer) written back
    write_fails_with: list[Exception] = field(default_factory=list)  #: raised by the next writes, in turn

    def read(self, since: str | None, now: datetime) -> Batch:
        self.reads += 1
        if self.fail_with is not None:
            raise self.fail_with
        return replace(self.practice, complete=True, cursor=now.isoformat(),
                       **{name: list(getattr(self.practice, name)) for name in (
                           "locations", "providers", "patients", "appointments", "recalls", "pickups", "opt_outs")})

    def check(self) -> str:
        if isinstance(self.fail_with, (PersonMustAct, RetryLater)):
            raise self.fail_with
        return f"fake practice: {len(self.practice.appointments)} appointments"

    def write_answer(self, appointment_key: str, answer: str) -> None:
        """Write-back (``WritesBack``): recorded in ``written`` unless a failure is queued."""
        if self.write_fails_with:
            raise self.write_fails_with.pop(0)
        self.written.append((appointment_key, answer))

    def change(self, key: str, **changes) -> AppointmentRecord:
        """Change one appointment as the PMS would (``start=..., end=...`` or ``status=...``)."""
        for index, appointment in enumerate(self.practice.appointments):
            if appointment.key == key:
                self.practice.appointments[index] = replace(appointment, **changes)
                return self.practice.appointments[index]
        raise KeyError(key)

    def delete(self, key: str) -> None:
        self.practice.appointments = [a for a in self.practice.appointments if a.key != key]
