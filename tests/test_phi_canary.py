"""No patient data on stdout or stderr, even when things fail: a real ``vitalsync run`` whose database
is locked (an exclusive SQLite lock held past the busy timeout) while a canary patient's text, delivery
report, SendGrid event, console search and HL7 message arrive, and while its scheduled inbox step
works on a reply from that patient stored before. Every line it writes is scanned.

Then the lock goes, the providers retry, and each event is recorded once.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlencode

import httpx

from tests.connectors.test_hl7_daemon import free_port, wait_for_port
from tests.providers import ALWAYS_OPEN, provider_settings
from vitalsync.core.log import ALLOWED
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.status.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from vitalsync_connectors.hl7.testing import MllpClient, siu

NAME, NUMBER, EMAIL = "Zebediah Quonsett", "+12125550147", "zebediah.quonsett@example.com"
BODY = f"This is {NAME}, I have chest pain"
CANARIES = ["Zebediah", "Quonsett", "2125550147", "555-0147", "5550147", "zebediah.quonsett", "chest pain"]


def locked(database) -> sqlite3.Connection:
    """Another program holding the database's write lock (until ROLLBACK)."""
    locker = sqlite3.connect(database, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE job_lease SET owner = owner")  # a write: the lock is taken now
    return locker


def wait_until(check, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_locked_database_during_every_kind_of_request_and_job_logs_no_patient_data(tmp_path):
    hooks, console, hl7 = free_port(), free_port(), free_port()
    public = f"http://127.0.0.1:{hooks}"
    (tmp_path / "console-key").write_text("k" * 40)
    (tmp_path / "console-key").chmod(0o600)
    (tmp_path / "password").write_text("a long enough password\n")
    database = tmp_path / "vitalsync.db"
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid:
        config = tmp_path / "config.toml"
        config.write_text(
            '[database]\nurl = "sqlite:///vitalsync.db?timeout=1"\n'
            f'[connector]\ntype = "hl7"\nlisten = "127.0.0.1:{hl7}"\n'
            f'[daemon]\ndispatch_seconds = 1\n'
            f'[console]\nenabled = true\nlisten = "127.0.0.1:{console}"\nsecret_key_file = "console-key"\n'
            'secure_cookies = false\n' + ALWAYS_OPEN
            + provider_settings(tmp_path, twilio, sendgrid, public_url=public, listen=f"127.0.0.1:{hooks}"),
            encoding="utf-8")
        vitalsync = [sys.executable, "-m", "vitalsync"]
        subprocess.run(vitalsync + ["user", "add", "admin", "--role", "admin", "--config", str(config),
                                    "--password-file", str(tmp_path / "password")], check=True, capture_output=True)
        with sqlite3.connect(database) as db:  # a reply stored before a crash: the inbox step's to process
            db.execute("INSERT INTO inbox_event (provider, kind, event_id, reference, payload, received_at, attempts,"
                       " outcome) VALUES ('twilio', 'sms_inbound', 'SMstored', '', ?, datetime('now'), 0, '')",
                       (urlencode({"MessageSid": "SMstored", "From": NUMBER, "Body": BODY}),))

        stdout, stderr = open(tmp_path / "stdout", "w+"), open(tmp_path / "stderr", "w+")
        locker = locked(database)
        daemon = subprocess.Popen(vitalsync + ["run", "--config", str(config)], stdout=stdout, stderr=stderr,
                                  cwd=tmp_path)
        try:
            for port in (hooks, console, hl7):
                wait_for_port(port)
            text = {"MessageSid": "SMcanary", "From": NUMBER, "To": "+15005550006", "Body": BODY,
                    "AccountSid": twilio.account_sid}
            report = {"MessageSid": "SMsent", "MessageStatus": "undelivered", "ErrorCode": "30006", "To": NUMBER,
                      "From": "+15005550006", "AccountSid": twilio.account_sid}
            events = json.dumps([{"email": EMAIL, "event": "bounce", "sg_event_id": "canary-1", "timestamp": int(time.time()),
                                  "sg_message_id": "EMcanary.filter-1", "reason": f"550 {EMAIL} unknown ({NAME})"}])

            def post_all() -> list[int]:
                codes = [twilio.callbacks.post(f"{public}/webhooks/twilio/sms/inbound", text)[0],
                         twilio.callbacks.post(f"{public}/webhooks/twilio/sms/status", report)[0]]
                stamp = str(int(time.time()))
                codes.append(httpx.post(f"{public}/webhooks/sendgrid/events", content=events, timeout=30, headers={
                    SIGNATURE_HEADER: sendgrid.sign(events.encode(), stamp), TIMESTAMP_HEADER: stamp}).status_code)
                return codes

            assert post_all() == [500, 500, 500]
            with MllpClient(("127.0.0.1", hl7)) as client:
                nak = client.send(siu("S12", "A9", patient="P9", name="Quonsett^Zebediah",
                                      home="^PRN^CP^^1^212^5550147"))
            assert nak.code != "AA"
            wait_until(lambda: _read(stderr).count('"inbox_processing_failed"') >= 2)  # the scheduled step, twice
            locker.execute("ROLLBACK")

            wait_until(lambda: _one(database, "SELECT count(*) FROM reply WHERE body = ?", BODY) == 1)
            browser = httpx.Client(base_url=f"http://127.0.0.1:{console}", timeout=30)
            form = browser.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
            assert browser.post("/login", data={"name": "admin", "password": "a long enough password",
                                                "csrf": csrf}).status_code == 303
            locker = locked(database)
            search = browser.get("/log", params={"patient": NAME})  # its audit row names what was searched
            locker.execute("ROLLBACK")
            assert search.status_code == 500 and search.headers["x-request-id"] in search.text

            assert post_all() == [200, 200, 200]  # the providers retry: now stored
            assert post_all() == [200, 200, 200]  # and once more: duplicates
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
            locker.close()
        assert daemon.returncode == 0
        written = _read(stdout) + _read(stderr)

    assert _one(database, "SELECT count(*) FROM reply WHERE body = ?", BODY) == 2  # the stored one and the text
    assert _one(database, "SELECT count(*) FROM inbox_event WHERE processed_at IS NULL AND reference = ''") == 0
    for canary in CANARIES:
        assert canary.lower() not in written.lower(), canary
    lines = [json.loads(line) for line in written.splitlines() if line.strip()]  # JSON lines, nothing else
    assert all(set(line) <= ALLOWED for line in lines)
    failed = [(line.get("source"), line["error_type"]) for line in lines if line["event"] == "request_failed"]
    assert failed.count(("webhooks", "OperationalError")) == 3 and ("console", "OperationalError") in failed
    assert any(line["event"] == "hl7_sink_failed" for line in lines)
    assert any(line["event"] == "step_crashed" and line["job"] == "inbox" for line in lines)


def _read(file) -> str:
    file.flush()
    file.seek(0)
    return file.read()


def _one(database, query: str, *args):
    with sqlite3.connect(database) as db:
        return db.execute(query, args).fetchone()[0]
