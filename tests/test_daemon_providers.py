"""`vitalsync run` with real providers' clients: sends go to (fake) Twilio and SendGrid, and their
signed callbacks come back through the daemon's webhook receiver and move the messages on."""

import signal
import sqlite3
import subprocess
import sys
import time

from tests.connectors.test_hl7_daemon import free_port
from tests.providers import ALWAYS_OPEN, provider_settings
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio


def test_the_daemon_sends_through_providers_and_takes_their_callbacks(tmp_path):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with FakeTwilio() as twilio, FakeSendGrid(event_url=f"{public}/webhooks/sendgrid/events", auto_events=True).start() as sendgrid:
        (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///vitalsync.db"\n' + ALWAYS_OPEN + provider_settings(
            tmp_path, twilio, sendgrid, public_url=public, listen=f"127.0.0.1:{port}"), encoding="utf-8")
        daemon = subprocess.Popen([sys.executable, "-m", "vitalsync", "run", "--config", str(tmp_path / "config.toml")],
                                  stderr=subprocess.PIPE, text=True)
        try:
            statuses = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not statuses.get("received"):
                time.sleep(1)
                twilio.callbacks.drain()
                if (tmp_path / "vitalsync.db").exists():
                    with sqlite3.connect(tmp_path / "vitalsync.db") as db:
                        try:
                            statuses = dict(db.execute("SELECT status, count(*) FROM message GROUP BY status").fetchall())
                        except sqlite3.OperationalError:
                            pass
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, errors = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, errors[-3000:]
    assert twilio.messages, "texts reached Twilio"
    assert statuses.get("received"), (statuses, errors[-2000:])
