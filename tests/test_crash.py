"""Crash test: a dispatching process is killed with SIGKILL at random moments, again and again, while
thousands of reminders go out by SMS, email and voice through the real twilio and sendgrid clients to
the fake Twilio and SendGrid on loopback.

Afterwards, reconciliation (on a clock past ``SETTLE``) and one more dispatch settle whatever the
kills left unsure: texts in Twilio's message list, emails in SendGrid's Email Activity API, calls in
Twilio's call list. Then every message is accounted for: each one sent is at its provider exactly
once, and each text, email and call at a provider belongs to exactly one sent message (0 duplicates);
nothing is left unsent or flagged (0 lost); the only other endings are the re-check's legitimate
drops (skipped, cancelled).

The practice is the demo connector's (600 patients, two weeks), planned 60 days ahead through the
real pipeline with the stock kinds; then every planned message is made due now, so that the worker
has a few thousand to send, and they are spread over the three channels (by message id, wherever
the kind has the channel and the patient an address for it). Only the SQLite backend: one worker at
a time, killed and restarted (tests/test_scale.py runs several workers on PostgreSQL).
"""

from __future__ import annotations

import os
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

from tests.providers import ALWAYS_OPEN, NO_LIMITS, provider_settings
from vitalsync.app.runtime import build
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.reconcile import SETTLE
from vitalsync.dispatch.recheck import gather
from vitalsync.mirror.tables import Patient
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


def write_config(tmp_path: Path, twilio: FakeTwilio, sendgrid: FakeSendGrid, *,
                 url: str = "sqlite:///vitalsync.db", daemon: str = f"lease_seconds = {LEASE_SECONDS}") -> Path:
    """The demo practice (600 patients) over the fake providers, always open; ``daemon`` adds to [daemon]."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{url}"
[connector]
type = "demo"
patients = 600
weeks = 2
{ALWAYS_OPEN}{NO_LIMITS}
[daemon]
plan_ahead_days = 60
batch_size = 20
{daemon}
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


def spread_over_channels(config_path: Path) -> Counter:
    """Send every third due message by email and every third by voice, where its kind and patient allow."""
    runtime = build(load_config(config_path))
    with session(runtime.engine) as db:
        patients = {p.key: p for p in db.exec(select(Patient))}
        for message in db.exec(select(Message).where(Message.status == MessageStatus.NOT_SENT)):
            channels, patient = runtime.kinds[message.kind].channels, patients[message.patient_key]
            wanted = ("sms", "email", "voice")[message.id % 3]
            address = {"sms": patient.mobile, "email": patient.email, "voice": patient.mobile}[wanted]
            if wanted in channels and address:
                message.channel, message.address = wanted, address
                db.add(message)
        db.commit()
        spread = Counter(db.exec(select(Message.channel).where(Message.status == MessageStatus.NOT_SENT)))
    runtime.engine.dispose()
    return spread


def start_server(config_path: Path, log) -> subprocess.Popen:
    """The fork server of tests/crash_worker.py: it spawns dispatching processes on demand."""
    return subprocess.Popen([sys.executable, str(WORKER), str(config_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=config_path.parent)


def start_worker(server: subprocess.Popen, log) -> int:
    """A new dispatching process; its pid once it is about to dispatch."""
    server.stdin.write("spawn\n")
    server.stdin.flush()
    with selectors.DefaultSelector() as chosen:
        chosen.register(server.stdout, selectors.EVENT_READ)
        word, _, pid = (server.stdout.readline() if chosen.select(timeout=30) else "").partition(" ")
    if word != "ready":
        raise AssertionError(f"the worker did not start (server exit {server.poll()}); see {log.name}")
    return int(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid: int) -> None:
    """SIGKILL, and wait until the process is gone (the fork server reaps it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.005)


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
        spread = spread_over_channels(config_path)
        assert all(spread[channel] >= MIN_MESSAGES / 5 for channel in ("sms", "email", "voice")), spread

        # 1. kill a dispatching worker at random moments, starting a new one each time
        kills, worker, server = 0, None, start_server(config_path, log)
        try:
            while kills < KILLS:
                worker = start_worker(server, log)
                time.sleep(rng.uniform(0.05, 2.0))
                assert alive(worker), f"the worker died on its own; see {log.name}"
                kill(worker)
                kills += 1
            sent_while_killing = len(twilio.messages) + len(twilio.calls) + len(sendgrid.stored)
            killing_done = time.monotonic()

            # 2. one last worker sends the rest, taking the killed ones' batches once their leases expire
            worker = start_worker(server, log)
            deadline = time.monotonic() + 90
            while counts(db_path).get(MessageStatus.NOT_SENT) and time.monotonic() < deadline:
                assert alive(worker), f"the worker died on its own; see {log.name}"
                time.sleep(0.25)
        finally:
            if worker is not None:
                kill(worker)
            server.stdin.close()
            server.wait(timeout=10)
            server.stdout.close()
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
                if message.channel == "sms":
                    kind = runtime.kinds[message.kind]
                    outgoing = runtime.dispatcher._outgoing(message, kind, gather(db, message, kind))
                    rendered[(outgoing.to, outgoing.body)] += 1
        runtime.engine.dispose()
        at_twilio, calls, emails = dict(twilio.messages), dict(twilio.calls), list(sendgrid.stored)

    statuses = Counter(str(m.status) for m in messages)
    by_id = {m.id: m for m in messages}
    flagged_channels = Counter(by_id[i].channel for i in flagged)
    summary = (f"{planned} planned, {dict(spread)} by channel, {kills} kills, {sent_while_killing} sent while killing, "
               f"statuses {dict(statuses)}, before reconciliation {before_reconcile}, flagged {dict(flagged_channels)}, "
               f"reconciled {dict(reconciled)}, killing ended at {killing_done - started:.1f}s, "
               f"all done at {time.monotonic() - started:.1f}s")
    print(summary)
    assert kills >= 20
    assert flagged, f"no kill landed mid-send: the test proved nothing ({summary})"
    # 0 lost: every message ends sent, or was dropped by the re-check; none unsent, none unsure
    assert set(statuses) <= {MessageStatus.SENT, *DROPPED}, summary
    assert len(sent) >= MIN_MESSAGES, summary
    # 0 duplicates: each text, call and email at a provider is owned by exactly one sent message of its
    # channel, and each sent message by exactly one of them
    references = Counter(m.provider_ref for m in sent)
    assert all(n == 1 for n in references.values()), [r for r, n in references.items() if n > 1]
    owned = {channel: {m.provider_ref: m for m in sent if m.channel == channel} for channel in ("sms", "email", "voice")}
    assert set(owned["sms"]) == set(at_twilio), (len(owned["sms"]), len(at_twilio))
    assert set(owned["voice"]) == set(calls), (len(owned["voice"]), len(calls))
    assert sorted(owned["email"]) == sorted(e["msg_id"].split(".")[0] for e in emails), (len(owned["email"]), len(emails))
    assert all(at_twilio[ref]["to"] == m.address for ref, m in owned["sms"].items())
    assert all(calls[ref]["to"] == m.address for ref, m in owned["voice"].items())
    # each email carries its message's id: no message's email is at SendGrid twice, none missing
    assert Counter(int(e["unique_args"]["vitalsync_message"]) for e in emails) == Counter(m.id for m in owned["email"].values())
    # and by content: per recipient and text, as many texts at Twilio as messages that should say it
    assert Counter((m["to"], m["body"]) for m in at_twilio.values()) == rendered
