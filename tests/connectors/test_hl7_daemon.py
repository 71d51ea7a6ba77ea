"""The daemon with an HL7 feed: a pushed S12 is in the mirror by the time the PMS gets its ACK."""

import signal
import socket
import sqlite3
import subprocess
import sys
import time

from vitalsync_connectors.hl7.testing import MllpClient, siu


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the daemon never listened for HL7")


def test_the_daemon_stores_a_pushed_appointment_before_it_acknowledges(tmp_path):
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///vitalsync.db"\n[connector]\ntype = "hl7"\n'
                      f'listen = "127.0.0.1:{port}"\n', encoding="utf-8")
    daemon = subprocess.Popen([sys.executable, "-m", "vitalsync", "run", "--config", str(config)],
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port)
        with MllpClient(("127.0.0.1", port)) as client:
            reply = client.send(siu("S12", "A77", patient="P9", start="202612011000"))
        assert reply.code == "AA", reply.text
        with sqlite3.connect(tmp_path / "vitalsync.db") as db:
            row = db.execute("SELECT patient_key, status FROM appointment WHERE key = 'A77'").fetchone()
        assert row == ("P9", "scheduled")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, errors[-2000:]
    assert "push_applied" in errors and "daemon_stopped" in errors
