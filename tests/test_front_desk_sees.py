"""The front desk sees what happened (issue 11, point 12): each message's address and language in the
log (CLI JSON / CSV / table, the console's log page and CSV export), and the report's ``skipped``
counting the patients planning could not reach at all, per kind. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
import structlog
from sqlmodel import select
from starlette.testclient import TestClient

from tests.console.conftest import NEW_YORK, PASSWORD, SECRET, log_in
from vitalsync import cli
from vitalsync.console import accounts, queries
from vitalsync.console.web import console_app
from vitalsync.core.db import session
from vitalsync.core.vocab import Channel, MessageStatus
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Decision, Message
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, OptOutRecord, PatientRecord, RecallRecord

TUESDAY = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)  # the clock starts Monday 2 March, midnight


@pytest.fixture
def practice(runtime, connector, write_config):
    """Ann (SMS), Ben (no contact at all), Cal (texts and calls opted out), Dolores (email, Spanish),
    Eve (booked two hours from now: every reminder's time has passed), Fay (booked tomorrow noon:
    the two-day reminder's time has passed, the three-hour one goes)."""
    connector.practice.locations = [LocationRecord("main", "Main Street", "America/New_York")]
    connector.practice.patients = [
        PatientRecord("1", "Ann", "Doe", mobile="+12125550001"),
        PatientRecord("2", "Ben", "Doe"),
        PatientRecord("3", "Cal", "Doe", mobile="+12125550003"),
        PatientRecord("4", "Dolores", "Doe", email="dolores@example.org", language="es"),
        PatientRecord("5", "Eve", "Doe", mobile="+12125550005"),
        PatientRecord("6", "Fay", "Doe", mobile="+12125550006"),
    ]
    connector.practice.opt_outs = [OptOutRecord("3", Channel.SMS), OptOutRecord("3", Channel.VOICE)]
    now = runtime.clock.now()
    starts = {"1": TUESDAY, "2": TUESDAY, "3": TUESDAY, "4": TUESDAY, "5": now + timedelta(hours=2),
              "6": now + timedelta(hours=36)}
    connector.practice.appointments = [AppointmentRecord(f"a{k}", k, "main", start, start + timedelta(minutes=30))
                                       for k, start in starts.items()]
    runtime.sync_once(full=True)
    runtime.plan_once()
    runtime.config_path = write_config(runtime.config.path.read_text(encoding="utf-8"), "cli.toml")
    return runtime


def run_cli(capsys, runtime, *args: str) -> str:
    try:
        assert cli.main([*args, "--config", str(runtime.config_path)]) == 0
        return capsys.readouterr().out
    finally:
        structlog.reset_defaults()


def test_the_log_shows_each_messages_address_and_language(practice, capsys):
    rows = json.loads(run_cli(capsys, practice, "log", "--format", "json"))
    assert rows and all({"address", "language"} <= set(row) for row in rows)
    reminders = {row["patient"]: row for row in rows if row["kind"] == "appointment_reminder"}
    assert (reminders["1"]["address"], reminders["1"]["language"]) == ("+12125550001", "en")
    assert (reminders["4"]["channel"], reminders["4"]["address"], reminders["4"]["language"]) == (
        "email", "dolores@example.org", "es")
    table = run_cli(capsys, practice, "log")
    assert "ADDRESS" in table.splitlines()[0] and "LANGUAGE" in table.splitlines()[0]
    assert "dolores@example.org" in table
    exported = list(csv.DictReader(io.StringIO(run_cli(capsys, practice, "log", "--format", "csv"))))
    assert {(r["patient"], r["address"], r["language"]) for r in exported if r["kind"] == "appointment_reminder"} >= {
        ("1", "+12125550001", "en"), ("4", "dolores@example.org", "es")}


def reminder_report(runtime, **where) -> dict:
    return next(r for r in queries.report(runtime.engine, queries.Filter(**where)) if r["kind"] == "appointment_reminder")


def test_the_report_counts_the_patients_planning_could_not_reach(practice, capsys):
    # Ben (no contact), Cal (opted out) and Eve (too late) got nothing; Fay's two-day reminder was
    # too late but her three-hour one is queued: she is not missed.
    row = reminder_report(practice)
    assert row["skipped_in_planning"] == 3 and row["skipped"] == 3
    [cli_row] = [r for r in json.loads(run_cli(capsys, practice, "report", "--format", "json"))
                 if r["kind"] == "appointment_reminder"]
    assert (cli_row["skipped"], cli_row["skipped_in_planning"]) == (3, 3)
    # planning again records nothing new and counts nothing twice
    practice.clock.advance(timedelta(minutes=30))
    practice.plan_once()
    assert reminder_report(practice)["skipped"] == 3
    # by patient, and by channel (a skip for want of any contact belongs to no channel)
    assert reminder_report(practice, patient="2")["skipped"] == 1
    assert reminder_report(practice, channel="sms")["skipped_in_planning"] == 1  # Eve's too-late SMS


def test_a_skip_because_the_patient_already_answered_is_not_a_miss(practice):
    with session(practice.engine) as db:
        ann = db.exec(select(Message).where(Message.patient_key == "1", Message.kind == "appointment_reminder")
                      .order_by(Message.send_at)).first()
        transition(db, ann, MessageStatus.SENT, at=practice.clock.now(), source="dispatch")
        transition(db, ann, MessageStatus.CONFIRMED, at=practice.clock.now(), source="reply")
        db.commit()
    practice.clock.advance(timedelta(hours=1))
    practice.plan_once()  # Ann's appointment is now skipped as "patient already confirmed"
    with session(practice.engine) as db:
        assert db.exec(select(Decision).where(Decision.appointment_key == "a1", Decision.decision == "skipped",
                                              Decision.reason == "patient already confirmed")).all()
    assert reminder_report(practice)["skipped_in_planning"] == 3


def test_a_recall_for_a_patient_already_booked_is_not_a_miss(practice, connector):
    connector.practice.recalls = [RecallRecord("r1", "1", date(2026, 3, 20))]  # Ann is booked for Tuesday
    practice.sync_once(full=True)
    practice.plan_once()
    with session(practice.engine) as db:
        assert db.exec(select(Decision.reason).where(Decision.kind == "recall")).all() == [
            "patient already has an appointment booked"]
    assert all(r["kind"] != "recall" or r["skipped"] == 0 for r in queries.report(practice.engine, queries.Filter()))


def test_a_kind_that_reached_nobody_still_has_a_report_row(practice):
    rows = {r["kind"]: r for r in queries.report(practice.engine, queries.Filter(patient="2"))}  # Ben: no message at all
    assert rows["appointment_reminder"]["planned"] == 0 and rows["appointment_reminder"]["skipped"] == 1


def test_the_console_shows_addresses_languages_and_planning_skips(practice):
    accounts.add_user(practice.engine, "fran", "front_desk", PASSWORD, practice.clock.now())
    with TestClient(console_app(practice.engine, practice.config, practice.clock, SECRET), base_url="https://testserver",
                    follow_redirects=False) as client:
        assert log_in(client, "fran").status_code == 303
        log = client.get("/log").text
        exported = list(csv.DictReader(io.StringIO(client.get("/log.csv").text)))
        report = client.get("/report").text
    assert "dolores@example.org" in log and "<th>Language</th>" in log
    assert {"address", "language"} <= set(exported[0])
    assert any(r["address"] == "dolores@example.org" and r["language"] == "es" for r in exported)
    assert "3 never planned" in report
