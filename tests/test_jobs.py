"""Sync, planning and reconciliation under job leases: skipped while another process holds the job."""

from __future__ import annotations

import time
from datetime import timedelta

from vitalsync.app.jobs import JobLeases
from vitalsync.core import leases
from vitalsync.core.clock import SystemClock


def test_a_held_sync_is_skipped_quietly_until_its_holder_stops_renewing(runtime, clock):
    ttl = timedelta(seconds=runtime.config.daemon.job_lease_seconds)
    assert leases.take(runtime.engine, "sync", "other-host:1", clock.now(), ttl)
    assert runtime.sync_once() is None
    assert runtime.connector.reads == 0, "a skipped sync must not read the PMS"
    assert runtime.plan_once() is not None  # another job, another lease
    clock.advance(ttl)  # the holder died: nobody renewed
    assert runtime.sync_once() is not None
    assert runtime.connector.reads == 1
    # released when done: the other process need not wait for the TTL
    assert leases.take(runtime.engine, "sync", "other-host:1", clock.now(), ttl)


def test_a_held_reconciliation_is_skipped(runtime, clock):
    ttl = timedelta(seconds=runtime.config.daemon.job_lease_seconds)
    assert leases.take(runtime.engine, "reconcile", "other-host:1", clock.now(), ttl)
    assert runtime.reconcile_once() is None
    leases.release(runtime.engine, "reconcile", "other-host:1")
    assert runtime.reconcile_once() is not None


def test_the_holder_renews_while_its_step_outlasts_the_ttl(runtime):
    ttl = timedelta(seconds=0.3)
    mine = JobLeases(runtime.engine, "a", SystemClock(), ttl)
    theirs = JobLeases(runtime.engine, "b", SystemClock(), ttl)
    with mine.held("sync") as held:
        assert held
        time.sleep(ttl.total_seconds() * 3)  # three TTLs: only renewals keep it
        assert theirs.run("sync", lambda: "ran") is None
    assert theirs.run("sync", lambda: "ran") == "ran"


def test_two_jobs_of_one_process_sharing_a_lease_never_overlap(runtime):
    jobs = JobLeases(runtime.engine, "a", SystemClock(), timedelta(seconds=30))
    with jobs.held("sync") as outer:
        assert outer
        assert jobs.run("sync", lambda: "ran") is None  # the nightly full sync while an incremental one runs
    assert jobs.run("sync", lambda: "ran") == "ran"
