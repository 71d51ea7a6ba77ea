"""Crash test: a dispatching process is killed with SIGKILL at random moments, again and again, while
thousands of reminders go out through the real twilio client to the fake Twilio on loopback.

Afterwards, reconciliation (on a clock past ``SETTLE``) and one more dispatch settle whatever the
kills left unsure. Then every message is accounted for: each one sent is at Twilio exactly once, and
each text at Twilio belongs to exactly one sent message (0 duplicates); nothing is left unsent or
flagged (0 lost); the only other endings are the re-check's legitimate drops (skipped, cancelled).

The practice is the demo connector's (600 patients, two weeks), planned 60 days ahead through the
real pipeline, with every stock kind routed to SMS (a site kinds folder) so that every send can be
looked up at the provider; then every planned message is made due now, so that the worker has a few
thousand to send. Only the SQLite backend: one worker at a time, killed and restarted.
"""

from __future__ import annotations

import random
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import update
from sqlmodel import select

from tests.providers import ALWAYS_OPEN, provider_settings
from vitalsync.app.runtime import build
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.reconcile import SETTLE
from vitalsync.dispatch.recheck import gather
from vitalsync.queue.tables import Message, MessageEvent

WORKER = Path(__file__).with_name("crash_worker.py")
STOCK_KINDS = Path(__file__).resolve().parents[1] / "message_kinds"
SEED = 20260304
KILLS = 24
LEASE_SECONDS = 10  # the least the config allows: a killed worker's batch waits this long
MIN_MESSAGES = 2000
DROPPED = {MessageStatus.SKIPPED, MessageStatus.CANCELLED}  # the re-check's legitimate endings


def sms_only_kinds(folder: Path) -> Path:
    """The stock kinds with SMS as their only channel: every send can be looked up at Twilio."""
    folder.mkdir()
    for stock in STOCK_KINDS.glob("*.toml"):
        text = re.sub(r'(?m)^channels = \[.*\]$', 'channels = ["sms"]', stock.read_text(encoding="utf-8"))
        (folder / stock.name).write_text(text, encoding="utf-8")
    return folder


def write_config(tmp_path: Path, twilio: FakeTwilio, sendgrid: FakeSendGrid) -> Path:
    sms_only_kinds(tmp_path / "kinds")
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///vitalsync.db"
[connector]
type = "demo"
patients = 600
weeks = 2
{ALWAYS_OPEN}
[daemon]
plan_ahead_days = 60
batch_size = 20
lease_seconds = {LEASE_SECONDS}
[message_kinds]
directory = "kinds"
{provider_settings(tmp_path, twilio, sendgrid)}
[log]
level = "warning"
format = "json"
""", encoding="utf-8")
    return path


def plan_everything_due_now(config_path: Path) -> int:
    """Sync the demo practice, plan 60 days ahead, and make every planned message due now."""
    runtime = build(load_config(config_path))
    runtime.sync_once(full=True)
    runtime.plan_once()
    now = datetime.now(timezone.utc)
    with session(runtime.engine) as db:
        db.execute(update(Message).where(Message.status == MessageStatus.NOT_SENT).values(send_at=now - timedelta(minutes=1)))
        db.commit()
        due = len(db.exec(select(Message.id).where(Message.status == MessageStatus.NOT_SENT)).all())
    runtime.engine.dispose()
    return due


def start_worker(config_path: Path, log) -> subprocess.Popen:
    worker = subprocess.Popen([sys.executable, str(WORKER), str(config_path)], stdout=subprocess.PIPE,
                              stderr=log, text=True, cwd=config_path.parent)
    with selectors.DefaultSelector() as chosen:
        chosen.register(worker.stdout, selectors.EVENT_READ)
        if not chosen.select(timeout=30) or worker.stdout.readline().strip() != "ready":
            worker.kill()
            worker.wait()
            raise AssertionError(f"the worker did not start (exit {worker.returncode}); see {log.name}")
    return worker


def counts(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path, timeout=30) as db:
        return dict(db.execute("SELECT status, count(*) FROM message GROUP BY status").fetchall())


def test_sigkilled_dispatchers_send_each_message_exactly_once(tmp_path):
    rng = random.Random(SEED)
    db_path = tmp_path / "vitalsync.db"
    started = time.monotonic()
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid, open(tmp_path / "worker.log", "w") as log:
        config_path = write_config(tmp_path, twilio, sendgrid)
        planned = plan_everything_due_now(config_path)
        assert planned >= MIN_MESSAGES, f"only {planned} messages planned"

        # 1. kill a dispatching worker at random moments, restarting it each time
        kills, worker = 0, None
        try:
            while kills < KILLS:
                worker = start_worker(config_path, log)
                time.sleep(rng.uniform(0.05, 0.6))
                assert worker.poll() is None, f"the worker died on its own (exit {worker.returncode}); see {log.name}"
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker.stdout.close()
                kills += 1
            sent_while_killing = len(twilio.messages)
            killing_done = time.monotonic()

            # 2. one last worker sends the rest, taking the killed ones' batches once their leases expire
            worker = start_worker(config_path, log)
            deadline = time.monotonic() + 60
            while counts(db_path).get(MessageStatus.NOT_SENT) and time.monotonic() < deadline:
                assert worker.poll() is None, f"the worker died on its own; see {log.name}"
                time.sleep(0.25)
        finally:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
            if worker is not None:
                worker.stdout.close()
        before_reconcile = counts(db_path)
        assert not before_reconcile.get(MessageStatus.NOT_SENT), before_reconcile

        # 3. reconcile past SETTLE (absence at the provider proves something only then), send what is
        #    provably not there, and again until nothing is flagged
        clock = VirtualClock(datetime.now(timezone.utc) + SETTLE + timedelta(minutes=1))
        runtime = build(load_config(config_path), clock)
        reconciled = Counter()
        for _ in range(3):
            report = runtime.reconcile_once()
            reconciled.update(report.__dict__)
            while runtime.dispatch_once().claimed:
                pass
            now = counts(db_path)
            if not now.get(MessageStatus.NEEDS_RECONCILIATION) and not now.get(MessageStatus.NOT_SENT):
                break

        # 4. account for every message
        with session(runtime.engine) as db:
            messages = db.exec(select(Message)).all()
            flagged = {e.message_id for e in db.exec(select(MessageEvent).where(
                MessageEvent.status == MessageStatus.NEEDS_RECONCILIATION))}
            sent = [m for m in messages if m.status == MessageStatus.SENT]
            rendered = Counter()
            for message in sent:
                kind = runtime.kinds[message.kind]
                outgoing = runtime.dispatcher._outgoing(message, kind, gather(db, message, kind))
                rendered[(outgoing.to, outgoing.body)] += 1
        runtime.engine.dispose()
        at_twilio = dict(twilio.messages)

    statuses = Counter(str(m.status) for m in messages)
    summary = (f"{planned} planned, {kills} kills, {sent_while_killing} sent while killing, statuses {dict(statuses)}, "
               f"before reconciliation {before_reconcile}, flagged {len(flagged)}, reconciled {dict(reconciled)}, "
               f"killing ended at {killing_done - started:.1f}s, all done at {time.monotonic() - started:.1f}s")
    print(summary)
    assert kills >= 20
    assert flagged, f"no kill landed mid-send: the test proved nothing ({summary})"
    # 0 lost: every message ends sent, or was dropped by the re-check; none unsent, none unsure
    assert set(statuses) <= {MessageStatus.SENT, *DROPPED}, summary
    assert len(sent) >= MIN_MESSAGES, summary
    # 0 duplicates: each text at Twilio is owned by exactly one sent message, and each sent message by one text
    references = Counter(m.provider_ref for m in sent)
    assert all(n == 1 for n in references.values()), [r for r, n in references.items() if n > 1]
    assert set(references) == set(at_twilio), (len(references), len(at_twilio))
    assert all(at_twilio[m.provider_ref]["to"] == m.address for m in sent)
    # and by content: per recipient and text, as many at Twilio as messages that should say it
    assert Counter((m["to"], m["body"]) for m in at_twilio.values()) == rendered
    assert not sendgrid.requests  # everything went by SMS
