"""Write-back, end to end: reminders planned from an Open Dental database (MariaDB) go out, the
patients answer by SMS through the signed Twilio webhook over HTTP, and their answers reach a local
Open Dental REST API over HTTP: once each, late but never lost while the API is down, held for a
person (Sync page, ``vitalsync check``) when the API refuses. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import socket
from datetime import date, timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from vitalsync.app.check import check
from vitalsync.app.runtime import build_connector
from vitalsync.console import accounts
from vitalsync.console.web import console_app
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.queue.tables import Message
from vitalsync.status.tables import PmsWrite
from vitalsync.status.webhooks import serve, webhook_app
from vitalsync_connectors.opendental.testapi import FakeOpenDentalApi
from vitalsync_connectors.opendental.testdb import create_schema, fill, scratch_database

KEY = "dev-key/customer-key"
TOKEN = "fake-twilio-auth-token"
INBOUND = "/webhooks/twilio/sms/inbound"
DECLINED_DEF = 7  #: the office's own ApptConfirmed definition for "patient declined" (a DefNum)


@pytest.fixture(scope="module")
def practice(server):
    with scratch_database(f"{server}/vs_odwb") as (url, conn):
        create_schema(conn)
        fill(conn, patients=60, appointments=200, seed=4, start=date(2026, 3, 2))
        yield url


@pytest.fixture
def api():
    with FakeOpenDentalApi(KEY) as fake:
        yield fake


@pytest.fixture
def config(write_config, database_url, practice, api, tmp_path):
    (tmp_path / "od-api-key").write_text(KEY + "\n")
    (tmp_path / "od-api-key").chmod(0o600)  # secrets must be private
    return load_config(write_config(
        f'[database]\nurl = "{database_url}"\n[clinic]\nname = "Test Dental"\nphone = "(212) 555-0100"\n'
        f'[connector]\ntype = "opendental"\nurl = "{practice}"\nwrite_back = true\napi_url = "{api.url}"\n'
        f'api_key_file = "od-api-key"\nwrite_declined = {DECLINED_DEF}\n'))


@pytest.fixture
def connector(config):
    return build_connector(config)  # from the config: its API key file and its answer mapping


@pytest.fixture
def patients(runtime):
    """Text as a patient: each reply goes through the fake Twilio's signed inbound webhook over HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    served = serve(webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                               sendgrid_public_key=None, public_url=base), "127.0.0.1", port)
    with FakeTwilio(auth_token=TOKEN) as twilio:
        def reply(phone: str, body: str) -> None:
            code, _ = twilio.send_inbound(base + INBOUND, From=phone, To="+15005550006", Body=body)
            assert code == 200
        yield reply
    served.stop()


def texted_reminders(runtime) -> list[Message]:
    """Sync the Open Dental practice, then plan and dispatch hour by hour for three days."""
    runtime.sync_once(full=True)
    for _ in range(72):
        runtime.plan_once()
        runtime.dispatch_once()
        runtime.clock.advance(timedelta(hours=1))
    with session(runtime.engine) as db:
        texts = db.exec(select(Message).where(Message.asks_reply, Message.channel == "sms", Message.status == "sent")
                        .order_by(Message.id)).all()
    assert len(texts) >= 2, "the practice gets at least two texted reminders"
    return texts


def writes(runtime) -> list[tuple[str, str, str, int]]:
    with session(runtime.engine) as db:
        return [(w.appointment_key, w.answer, w.status, w.attempts)
                for w in db.exec(select(PmsWrite).order_by(PmsWrite.id))]


def test_answers_reach_open_dental_once_even_when_its_api_is_down_for_a_while(runtime, api, patients):
    ann, ben = texted_reminders(runtime)[:2]
    api.down()  # connection refused
    patients(ann.address, "C")
    patients(ben.address, "N")
    # queued with the answers, before any write is tried
    assert writes(runtime) == [(ann.appointment_key, "confirmed", "pending", 0),
                               (ben.appointment_key, "declined", "pending", 0)]

    report = runtime.write_back_once()
    assert (report.written, report.retrying) == (0, 1)  # the pass stops at the first outage
    assert writes(runtime)[0][2:] == ("pending", 1)

    api.up()
    api.statuses = [503]  # back, but still starting
    runtime.clock.advance(timedelta(seconds=10))
    assert runtime.write_back_once().retrying == 0 and api.requests == []  # 30 s backoff not over
    runtime.clock.advance(timedelta(seconds=25))
    assert runtime.write_back_once().retrying == 1 and len(api.requests) == 1  # the 503
    runtime.clock.advance(timedelta(seconds=30))
    assert runtime.write_back_once().written == 0  # the second backoff (60 s) is not over
    runtime.clock.advance(timedelta(seconds=31))
    assert runtime.write_back_once().written == 2

    assert api.written == [(int(ann.appointment_key), "Confirmed"), (int(ben.appointment_key), DECLINED_DEF)]
    assert [r[2:] for r in api.requests] == [(f"ODFHIR {KEY}", {"confirmVal": "Confirmed"}),
                                            (f"ODFHIR {KEY}", {"confirmVal": "Confirmed"}),
                                            (f"ODFHIR {KEY}", {"defNum": DECLINED_DEF})]
    assert [w[2] for w in writes(runtime)] == ["done", "done"]

    patients(ann.address, "C")  # a repeated answer writes nothing more
    runtime.clock.advance(timedelta(hours=1))
    assert runtime.write_back_once().written == 0
    assert len(api.written) == 2 and len(writes(runtime)) == 2


def test_a_refused_write_is_held_shown_on_the_sync_page_and_by_check_and_goes_once_released(
        runtime, api, patients, capsys):
    ann, ben = texted_reminders(runtime)[:2]
    api.key = "another/key"  # the office regenerated its customer key: 401
    patients(ann.address, "YES")
    report = runtime.write_back_once()
    assert (report.held, report.written) == (1, 0)
    api.statuses = [400]
    patients(ben.address, "NO")
    assert runtime.write_back_once().held == 1
    assert [w[2] for w in writes(runtime)] == ["held", "held"]

    assert check(runtime.config) == 0  # held write-backs warn; the config itself is fine
    out = capsys.readouterr().out
    assert "WARN  write-back: 0 written, 0 pending, 2 held, 0 failed" in out
    assert f"held: appointment {ann.appointment_key} confirmed: the Open Dental API refused the key" in out
    assert f"held: appointment {ben.appointment_key} declined: the Open Dental API refused to confirm" in out

    accounts.add_user(runtime.engine, "fran", "front_desk", "correct horse battery", runtime.clock.now())
    with TestClient(console_app(runtime.engine, runtime.config, runtime.clock, "s" * 64),
                    base_url="https://testserver", follow_redirects=False) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        assert client.post("/login", data={"csrf": token, "name": "fran",
                                           "password": "correct horse battery"}).status_code == 303
        page = client.get("/sync").text
        assert "0 written, 0 pending, 2 held, 0 failed" in page and "refused the key" in page
        assert f"<td>{ann.appointment_key}</td><td>confirmed</td>" in page
        csrf = re.search(r'action="/sync/write-back/retry">\s*<input type="hidden" name="csrf" value="([^"]+)"',
                         page).group(1)
        assert client.post("/sync/write-back/retry", data={}).status_code == 403  # no CSRF token, nothing released
        api.key = KEY  # IT put the new key in place
        released = client.post("/sync/write-back/retry", data={"csrf": csrf})
        assert released.status_code == 303 and released.headers["location"] == "/sync?released=2"
        assert runtime.write_back_once().written == 2
        assert "2 written, 0 pending, 0 held, 0 failed" in client.get("/sync").text
    assert api.written == [(int(ann.appointment_key), "Confirmed"), (int(ben.appointment_key), DECLINED_DEF)]
