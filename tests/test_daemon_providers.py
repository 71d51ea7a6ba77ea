"""`vitalsync run` with real providers' clients: sends go to (fake) Twilio and SendGrid, and their
signed callbacks come back through the daemon's webhook receiver and move the messages on."""

import signal
import sqlite3
import subprocess
import sys
import time

from tests.connectors.test_hl7_daemon import free_port
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio


def test_the_daemon_sends_through_providers_and_takes_their_callbacks(tmp_path):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with FakeTwilio() as twilio, FakeSendGrid(event_url=f"{public}/webhooks/sendgrid/events", auto_events=True).start() as sendgrid:
        (tmp_path / "token").write_text(twilio.auth_token)
        (tmp_path / "key").write_text(sendgrid.api_key)
        (tmp_path / "config.toml").write_text(f"""
[database]
url = "sqlite:///vitalsync.db"
[schedule]
window_start = 00:00:00
window_end = 23:59:00
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
quiet_start = 23:59:00
quiet_end = 00:00:00
[sender]
type = "providers"
[twilio]
account_sid = "{twilio.account_sid}"
auth_token_file = "token"
from_number = "+15005550006"
base_url = "{twilio.base_url}"
[sendgrid]
api_key_file = "key"
from_email = "clinic@example.org"
base_url = "{sendgrid.url}"
webhook_public_key = "{sendgrid.public_key}"
[webhooks]
listen = "127.0.0.1:{port}"
public_url = "{public}"
""", encoding="utf-8")
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
