"""One process at a time runs a sync, a planning pass or a reconciliation pass.

Several ``vitalsync run`` processes may share one PostgreSQL queue. Dispatch needs nothing more
than its per-message claims, but two syncs at once would read the PMS twice and race on the
mirror, and two reconciliation passes would both ask the provider about the same flagged message.
So each such step runs under a job lease (:mod:`vitalsync.core.leases`):

- the lease is taken before the step; a process that finds it held skips the step quietly (one log
  line, no patient data) and tries again at its next turn;
- while the step runs, a thread renews the lease every third of its TTL, so a long full sync keeps
  it however long it takes;
- when the step ends the lease is released, so the next turn (in any process) need not wait;
- when the holder dies (SIGKILL, power loss) nobody renews: another process takes the job over once
  the TTL has run out.

Within one process, a lock per job keeps the scheduler's jobs that share a lease (the nightly full
sync and the incremental sync) from running at once: the database lease knows processes, not threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy import Engine

from vitalsync.core import leases
from vitalsync.core.clock import Clock, SystemClock

log = structlog.get_logger("vitalsync.jobs")
T = TypeVar("T")


class JobLeases:
    """The job leases of one process (its ``owner`` name), renewed while their step runs."""

    def __init__(self, engine: Engine, owner: str, clock: Clock, ttl: timedelta) -> None:
        self.engine, self.owner, self.clock, self.ttl = engine, owner, clock, ttl
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _now(self) -> datetime | None:
        """None on the system clock: leases then go by the database's clock, which every host shares
        (:mod:`vitalsync.core.leases`). A virtual clock (tests, the demo) is the time itself."""
        return None if isinstance(self.clock, SystemClock) else self.clock.now()

    def run(self, name: str, step: Callable[[], T]) -> T | None:
        """``step()`` under the lease on ``name``; None (the step skipped) while another holds it."""
        with self.held(name) as mine:
            return step() if mine else None

    @contextmanager
    def held(self, name: str) -> Iterator[bool]:
        with self._guard:
            local = self._locks.setdefault(name, threading.Lock())
        if not local.acquire(blocking=False):
            log.info("job_skipped", job=name, outcome="running in this process")
            yield False
            return
        try:
            if not leases.take(self.engine, name, self.owner, self._now(), self.ttl):
                log.info("job_skipped", job=name, outcome="held by another process")
                yield False
                return
            stop = threading.Event()
            renewer = threading.Thread(target=self._renew, args=(name, stop), name=f"lease-{name}", daemon=True)
            renewer.start()
            try:
                yield True
            finally:
                stop.set()
                renewer.join()
                leases.release(self.engine, name, self.owner)
        finally:
            local.release()

    def _renew(self, name: str, stop: threading.Event) -> None:
        while not stop.wait(self.ttl.total_seconds() / 3):
            try:
                renewed = leases.take(self.engine, name, self.owner, self._now(), self.ttl)
            except Exception as exc:  # noqa: BLE001 - the database is away: try again at the next beat
                log.warning("job_lease_renewal_failed", job=name, error_type=type(exc).__name__)
                continue
            if not renewed:  # we were too slow (a stalled process): another process runs the job now
                log.warning("job_lease_lost", job=name)
                return
