"""What the listener received and nobody has applied yet, for ``read()`` to return.

The journal is compacted: it holds the latest record of each key (a deleted appointment as a
tombstone) under the number of the message that last changed it, so it grows with the practice,
not with the traffic. A cursor is ``<run>:<number>``; the run changes with every process, so a
cursor from an earlier run (or from another connector) reads everything this run holds.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

from vitalsync.sync.connector import Batch

KINDS = ("locations", "providers", "patients", "appointments")


class Journal:
    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._number = 0
        # oldest change first: a changed key moves to the end, so a read walks back from the end
        self._rows: OrderedDict[tuple[str, str], tuple[int, object | None]] = OrderedDict()

    def add(self, batch: Batch) -> None:
        """Record one message's changes at once: a reader sees all of them or none."""
        with self._lock:
            self._number += 1
            for kind in KINDS:
                for record in getattr(batch, kind):
                    self._put((kind, record.key), record)
            for key in batch.deleted_appointments:
                self._put(("appointments", key), None)

    def since(self, cursor: str | None) -> Batch:
        """Every key changed after ``cursor`` at its latest state; never a complete batch."""
        after = self._number_of(cursor)
        with self._lock:
            batch = Batch(complete=False, cursor=f"{self.run}:{self._number}")
            for (kind, key), (number, record) in reversed(self._rows.items()):
                if number <= after:
                    break
                if record is None:
                    batch.deleted_appointments.append(key)
                else:
                    getattr(batch, kind).append(record)
        for name in (*KINDS, "deleted_appointments"):
            getattr(batch, name).reverse()  # in the order they changed
        return batch

    def _put(self, key: tuple[str, str], record) -> None:
        self._rows[key] = (self._number, record)
        self._rows.move_to_end(key)

    def _number_of(self, cursor: str | None) -> int:
        run, _, number = (cursor or "").partition(":")
        return int(number) if run == self.run and number.isdigit() else 0
