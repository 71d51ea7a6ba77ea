"""Times shown as what they are (issue 11, point 7): a clinic in Los Angeles reads its decision trace,
log and patient page in Pacific time labelled PST, never Pacific time labelled UTC; JSON stays UTC.

Runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog
from sqlmodel import select
from starlette.testclient import TestClient

from tests.console.conftest import PASSWORD, SECRET, log_in
from vitalsync import cli
from vitalsync.app.runtime import Runtime, open_database
from vitalsync.console import accounts
from vitalsync.console.alerts import alerts_once
from vitalsync.console.tables import AlertChoice, StaffUser
from vitalsync.console.web import console_app
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.times import shown
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake import FakeSender
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Message
from vitalsync.rules.kinds import load_kinds
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, PatientRecord, ProviderRecord
from vitalsync.sync.fake import FakeConnector

LA = ZoneInfo("America/Los_Angeles")
UTC = ZoneInfo("UTC")
START = datetime(2026, 3, 4, 10, 0, tzinfo=LA)  # Wednesday 10:00 Pacific = 18:00 UTC


@pytest.fixture
def la(write_config, database_url):
    """A Los Angeles clinic, one patient booked Wednesday 10:00 Pacific, synced and planned on
    Sunday 1 March 21:00 Pacific (Monday 05:00 UTC)."""
    path = write_config(f'[database]\nurl = "{database_url}"\n[schedule]\ntimezone = "America/Los_Angeles"\n'
                        '[clinic]\nname = "West Dental"\nphone = "(213) 555-0100"\n')
    config = load_config(path)
    clock = VirtualClock(datetime(2026, 3, 1, 21, 0, tzinfo=LA))
    connector = FakeConnector()
    connector.practice.locations = [LocationRecord("main", "Main Street", "America/Los_Angeles")]
    connector.practice.providers = [ProviderRecord("north", "Dr. North", "main")]
    connector.practice.patients = [PatientRecord("1", "Ann", "Doe", mobile="+12135550001")]
    connector.practice.appointments = [AppointmentRecord("a1", "1", "main", START, START + timedelta(minutes=30),
                                                         provider_key="north")]
    engine = open_database(config)
    runtime = Runtime(config=config, engine=engine, connector=connector, kinds=load_kinds(config.message_kinds.enabled),
                      sender=FakeSender(clock=clock, simulate=False), clock=clock)
    runtime.sync_once(full=True)
    runtime.plan_once()
    runtime.config_path = path
    yield runtime
    engine.dispose()


def run_cli(capsys, runtime, *args: str) -> str:
    """The command in this process; its log setup points at pytest's captured stream, so it is undone after."""
    try:
        assert cli.main([*args, "--config", str(runtime.config_path)]) == 0
        return capsys.readouterr().out
    finally:
        structlog.reset_defaults()


SEND_AT = re.compile(r"send at (\d{4}-\d\d-\d\d \d\d:\d\d) ([A-Z]+)")


def test_the_decision_trace_says_pacific_time_and_means_it(la, capsys):
    [trace] = json.loads(run_cli(capsys, la, "why", "--appointment", "a1", "--format", "json"))
    messages = {m["id"]: m for m in trace["messages"]}
    queued = [d for d in trace["decisions"] if d["decision"] == "queued"]
    # the reminder two days and three hours before (moved into the 09:00 window), the pre- and after-appointment messages
    assert sorted(d["kind"] for d in queued) == ["after_appointment", "appointment_reminder", "appointment_reminder",
                                                 "pre_appointment"]
    for decision in queued:
        day, zone = SEND_AT.search(decision["reason"]).groups()
        assert zone == "PST", decision["reason"]
        # the time the reason names is the message's send time, read in Pacific time
        send_at = datetime.fromisoformat(messages[decision["message"]]["send_at"])
        assert send_at.utcoffset() == timedelta(0)  # JSON stays ISO 8601 UTC
        assert send_at.astimezone(LA).strftime("%Y-%m-%d %H:%M") == day, (decision["reason"], send_at)
    assert any("deferred into the send window; send at 2026-03-04 09:00 PST" in d["reason"] for d in queued)

    table = run_cli(capsys, la, "why", "--appointment", "a1")
    assert "UTC" not in table  # no time in it is mislabelled, and none is left unlabelled UTC
    assert "2026-03-01 21:00 PST" in table  # when the decisions were made
    assert "send at 2026-03-04 09:00 PST" in table


def test_a_move_is_explained_in_the_clinics_time(la, capsys):
    moved = START + timedelta(days=1, hours=1)
    la.connector.change("a1", start=moved, end=moved + timedelta(minutes=30))
    la.clock.advance(timedelta(hours=1))
    la.sync_once()
    la.plan_once()
    table = run_cli(capsys, la, "why", "--appointment", "a1")
    assert "appointment moved to 2026-03-05 11:00 PST; planned again for the new time" in table


def test_the_log_table_shows_pacific_times_and_json_stays_utc(la, capsys):
    table = run_cli(capsys, la, "log")
    assert "2026-03-02 10:00 PST" in table and "2026-03-04 09:00 PST" in table
    assert "UTC" not in table
    rows = json.loads(run_cli(capsys, la, "log", "--format", "json", "--kind", "appointment_reminder"))
    assert sorted(r["send_at"] for r in rows) == ["2026-03-02T18:00:00+00:00", "2026-03-04T17:00:00+00:00"]
    # a day typed on the command line is the clinic's day, not the machine's
    assert [r["send_at"] for r in json.loads(run_cli(capsys, la, "log", "--format", "json", "--kind",
                                                      "appointment_reminder", "--since", "2026-03-04"))] \
        == ["2026-03-04T17:00:00+00:00"]


def test_the_patient_page_shows_pacific_times_labelled(la):
    accounts.add_user(la.engine, "fran", "front_desk", PASSWORD, la.clock.now())
    with TestClient(console_app(la.engine, la.config, la.clock, SECRET), base_url="https://testserver",
                    follow_redirects=False) as client:
        assert log_in(client, "fran").status_code == 303
        page = client.get("/patient/1").text
        log = client.get("/log").text
    assert "2026-03-04 10:00 PST" in page  # the appointment
    assert "send at 2026-03-04 09:00 PST" in page  # the trace's reason
    assert "2026-03-01 21:00 PST" in page  # when the decisions were made
    assert " UTC" not in page
    assert "2026-03-04 09:00 PST" in log and "2026-03-02 10:00 PST" in log


def test_an_alert_email_says_when_in_the_clinics_time(la):
    accounts.add_user(la.engine, "fran", "front_desk", PASSWORD, la.clock.now(), email="fran@clinic.example")
    now = la.clock.now()
    with session(la.engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == "fran")).one()
        db.add(AlertChoice(user_id=user.id, event="declined", kind="*"))
        message = db.exec(select(Message).order_by(Message.send_at)).first()
        transition(db, message, MessageStatus.SENT, at=now, source="dispatch")
        transition(db, message, MessageStatus.DECLINED, at=now, source="reply")
        db.commit()
    sender = FakeSender(clock=la.clock, simulate=False)
    assert alerts_once(la.engine, sender, la.config, now).alerts == 1
    assert f"at {shown(now, LA)}." in sender.sent[0].body
    assert "at 2026-03-01 21:00 PST." in sender.sent[0].body


def test_shown_labels_every_zone():
    at = datetime(2026, 7, 4, 17, 0, tzinfo=UTC)
    assert shown(at) == "2026-07-04 17:00 UTC"
    assert shown(at, LA) == "2026-07-04 10:00 PDT"
    assert shown("2026-01-04T17:00:00+00:00", ZoneInfo("America/New_York")) == "2026-01-04 12:00 EST"
    assert shown(at, ZoneInfo("America/Sao_Paulo")) == "2026-07-04 14:00 -03"  # no abbreviation: the offset
    assert shown(None) == ""
