"""Scale-out on one PostgreSQL database: several worker processes share the queue and the jobs.

- Three processes (``tests/scale_worker.py``: dispatch in one thread, sync and reconciliation tried
  continuously in another, as ``vitalsync run`` does) send a few thousand due reminders through the
  real twilio client to the fake Twilio: every message is sent exactly once, counted at the fake.
- Their sync and reconciliation passes, stretched so that they would overlap without the leases,
  never overlap across processes, while each process did try (and skip) them.
- A process killed while it holds the sync lease is taken over by another once the lease's TTL has
  run out, and not before its last renewal had run out.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select as sa_select
from sqlmodel import select

from tests.conftest import POSTGRES, _postgres_database
from tests.test_crash import plan_everything_due_now, sms_only_kinds
from tests.test_crash import write_config as crash_config
from vitalsync.core.db import make_engine, session
from vitalsync.core.leases import JobLease
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.queue.tables import Message

WORKER = Path(__file__).with_name("scale_worker.py")
WORKERS = 3
JOB_LEASE_SECONDS = 3
MIN_MESSAGES = 2000
DROPPED = {MessageStatus.SKIPPED, MessageStatus.CANCELLED}

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url():
    admin, name = _postgres_database()
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def write_config(tmp_path: Path, url: str, twilio: FakeTwilio, sendgrid: FakeSendGrid) -> Path:
    sms_only_kinds(tmp_path / "kinds")
    daemon = f'lease_seconds = 30\njob_lease_seconds = {JOB_LEASE_SECONDS}\n[message_kinds]\ndirectory = "kinds"'
    return crash_config(tmp_path, twilio, sendgrid, url=url, daemon=daemon)


def start(config_path: Path, record: Path, log, *extra: str) -> subprocess.Popen:
    worker = subprocess.Popen([sys.executable, str(WORKER), str(config_path), str(record), *extra],
                              stdout=subprocess.PIPE, stderr=log, text=True, cwd=config_path.parent)
    if worker.stdout.readline().strip() != "ready":
        worker.kill()
        worker.wait()
        raise AssertionError(f"a worker did not start (exit {worker.returncode}); see {log.name}")
    return worker


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker.stdout.close()


def read_record(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def overlaps(runs: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of passes of one job, in different processes, whose times intersect."""
    ordered = sorted(runs, key=lambda r: r["start"])
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]
            if b["start"] < a["end"] and a["pid"] != b["pid"]]


def test_workers_on_one_postgres_send_each_message_once_and_run_jobs_one_at_a_time(tmp_path, postgres_url):
    record = tmp_path / "jobs.jsonl"
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid, open(tmp_path / "workers.log", "w") as log:
        config_path = write_config(tmp_path, postgres_url, twilio, sendgrid)
        planned = plan_everything_due_now(config_path)
        assert planned >= MIN_MESSAGES, f"only {planned} messages planned"
        engine = make_engine(postgres_url)
        workers = []
        started = time.monotonic()
        try:
            workers = [start(config_path, record, log) for _ in range(WORKERS)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert all(w.poll() is None for w in workers), f"a worker died; see {log.name}"
                with engine.connect() as db:
                    left = db.execute(sa_select(func.count()).select_from(Message.__table__).where(
                        Message.__table__.c.status == MessageStatus.NOT_SENT)).scalar()
                if not left:
                    break
                time.sleep(0.25)
            time.sleep(1.0)  # a few more turns of the jobs with nothing left to send
        finally:
            stop(workers)
        elapsed = time.monotonic() - started
        with session(engine) as db:
            messages = db.exec(select(Message)).all()
        engine.dispose()
        at_twilio = dict(twilio.messages)

    statuses = Counter(str(m.status) for m in messages)
    sent = [m for m in messages if m.status == MessageStatus.SENT]
    summary = f"{planned} planned, {WORKERS} workers, statuses {dict(statuses)}, {len(at_twilio)} at Twilio, {elapsed:.1f}s"
    print(summary)
    # every message ended (none unsent, none unsure) and each sent one is at Twilio exactly once
    assert set(statuses) <= {MessageStatus.SENT, *DROPPED}, summary
    assert len(sent) >= MIN_MESSAGES, summary
    references = Counter(m.provider_ref for m in sent)
    assert all(n == 1 for n in references.values()), [r for r, n in references.items() if n > 1]
    assert set(references) == set(at_twilio), summary  # no text at Twilio that no message owns
    assert all(at_twilio[m.provider_ref]["to"] == m.address for m in sent)
    # the work was shared, and the jobs ran one process at a time although every process tried them
    entries = read_record(record)
    for job in ("sync", "reconcile"):
        runs = [e for e in entries if e["job"] == job and not e.get("skipped")]
        skipped = [e for e in entries if e["job"] == job and e.get("skipped")]
        assert len({r["pid"] for r in runs}) >= 1 and len(runs) >= 3, (job, len(runs))
        assert skipped, f"no {job} turn was ever skipped: the processes never contended"
        assert not overlaps(runs), overlaps(runs)[:3]
    assert len({m.lease_owner for m in messages}) <= 1  # leases are released when a message ends


def test_a_killed_holder_is_taken_over_after_the_ttl(tmp_path, postgres_url):
    record = tmp_path / "jobs.jsonl"
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid, open(tmp_path / "workers.log", "w") as log:
        config_path = write_config(tmp_path, postgres_url, twilio, sendgrid)
        engine = make_engine(postgres_url)
        workers = []
        try:
            holder = start(config_path, record, log, "--sync-only", "--sync-seconds", "600")
            workers.append(holder)
            deadline = time.monotonic() + 30
            while not _holder(engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            first_owner = _holder(engine)
            assert first_owner, "the first worker never took the sync lease"
            taker = start(config_path, record, log, "--sync-only", "--sync-seconds", "0.05")
            workers.append(taker)
            time.sleep(JOB_LEASE_SECONDS * 1.5)  # longer than the TTL: only renewals keep the holder's lease
            assert not [e for e in read_record(record) if e["pid"] == taker.pid], "the lease was taken while renewed"
            assert _holder(engine) == first_owner
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            killed = time.time()
            deadline = time.monotonic() + JOB_LEASE_SECONDS * 3
            while not [e for e in read_record(record) if e["pid"] == taker.pid] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop(workers)
        took_over = [e for e in read_record(record) if e["pid"] == taker.pid]
        engine.dispose()
    assert took_over, "nobody took the sync over after its holder died"
    waited = took_over[0]["start"] - killed
    # the holder renewed every TTL/3, so its lease ran out between 2/3 TTL and one TTL after the kill
    assert JOB_LEASE_SECONDS * 2 / 3 - 0.5 <= waited <= JOB_LEASE_SECONDS + 2, waited


def _holder(engine) -> str | None:
    with engine.connect() as db:
        row = db.execute(sa_select(JobLease.__table__.c.owner, JobLease.__table__.c.until).where(
            JobLease.__table__.c.name == "sync")).first()
    return row.owner if row and row.until.timestamp() > time.time() else None
