"""Preview a rule change before it takes effect (issue 11, point 13, the CLI half):
``vitalsync plan --dry-run [--kinds-dir DIR]`` writes nothing and says, per kind, what planning would
queue, cancel and move; planning for real then does exactly that. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import NEW_YORK
from vitalsync import cli
from vitalsync.app.preview import dry_run
from vitalsync.core.db import session
from vitalsync.core.vocab import AppointmentStatus, MessageStatus
from vitalsync.queue.planning import plan_once
from vitalsync.queue.preview import preview
from vitalsync.queue.tables import Decision, Message, MessageEvent, MessageTarget
from vitalsync.rules.kinds import load_kinds
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, PatientRecord

WEDNESDAY = datetime(2026, 3, 4, 10, 0, tzinfo=NEW_YORK)  # the clock: Monday 2 March, midnight; planned 3 days ahead
STOCK = Path(__file__).resolve().parent.parent / "message_kinds"


def booking(key: str, patient: str, start: datetime) -> AppointmentRecord:
    return AppointmentRecord(key, patient, "main", start, start + timedelta(minutes=30))


@pytest.fixture
def practice(runtime, connector, write_config):
    """Ann, Ben and Cal booked on Wednesday and planned; then Dee books and Cal cancels, synced, not planned."""
    connector.practice.locations = [LocationRecord("main", "Main Street", "America/New_York")]
    connector.practice.patients = [PatientRecord(str(k), name, "Doe", mobile=f"+1212555000{k}")
                                   for k, name in ((1, "Ann"), (2, "Ben"), (3, "Cal"), (4, "Dee"))]
    connector.practice.appointments = [booking(f"a{k}", str(k), WEDNESDAY + timedelta(hours=k)) for k in (1, 2, 3)]
    runtime.sync_once(full=True)
    runtime.plan_once()
    connector.practice.appointments.append(booking("a4", "4", WEDNESDAY + timedelta(hours=4)))
    connector.change("a3", status=AppointmentStatus.CANCELLED)
    runtime.clock.advance(timedelta(minutes=5))
    runtime.sync_once()
    runtime.config_path = write_config(runtime.config.path.read_text(encoding="utf-8"), "cli.toml")
    return runtime


@pytest.fixture
def one_day_before(tmp_path) -> Path:
    """A site folder whose reminder goes one day before instead of two."""
    folder = tmp_path / "kinds"
    folder.mkdir()
    text = (STOCK / "appointment_reminder.toml").read_text(encoding="utf-8")
    assert 'offsets = ["-2d", "-3h"]' in text
    (folder / "appointment_reminder.toml").write_text(text.replace('offsets = ["-2d", "-3h"]', 'offsets = ["-1d", "-3h"]'),
                                                      encoding="utf-8")
    (folder / "new_idea.toml").write_text(text, encoding="utf-8")  # not enabled: named, not previewed
    return folder


def snapshot(runtime) -> tuple:
    with session(runtime.engine) as db:
        return (tuple(db.exec(select(Message.id, Message.status, Message.send_at).order_by(Message.id))),
                db.exec(select(func.count()).select_from(Decision)).one(),
                db.exec(select(func.count()).select_from(MessageEvent)).one())


def run_cli(capsys, runtime, *args: str) -> str:
    try:
        assert cli.main([*args, "--config", str(runtime.config_path)]) == 0
        return capsys.readouterr().out
    finally:
        structlog.reset_defaults()


def dry(capsys, runtime, kinds_dir: Path, fmt: str) -> str:
    """What ``plan --dry-run --kinds-dir DIR --format FMT`` prints, on the test's virtual clock."""
    assert dry_run(runtime, kinds_dir, fmt) == 0
    return capsys.readouterr().out


def reminders(runtime, status: MessageStatus) -> set[tuple[str, datetime]]:
    with session(runtime.engine) as db:
        return set(db.exec(select(MessageTarget.appointment_key, Message.send_at)
                           .join(Message, Message.id == MessageTarget.message_id)
                           .where(Message.kind == "appointment_reminder", Message.status == status)))


def test_a_dry_run_writes_nothing_and_planning_then_does_what_it_said(practice):
    before = snapshot(practice)
    [row] = [k for k in preview(practice.engine, practice.kinds, practice.config, practice.clock)
             if k.kind == "appointment_reminder"]
    assert snapshot(practice) == before
    assert (row.queued, row.cancelled, row.moved) == (2, 2, 0)  # Dee's two reminders; Cal's two
    assert {(c.change, c.appointment) for c in row.examples} == {("queued", "a4"), ("cancelled", "a3")}
    pending = reminders(practice, MessageStatus.NOT_SENT)
    practice.plan_once()
    now_pending = reminders(practice, MessageStatus.NOT_SENT)
    assert len(now_pending - pending) == 2 and {a for a, _ in pending - now_pending} == {"a3"}


def test_an_edited_kind_is_previewed_as_moves_and_then_applied_so(practice, one_day_before, capsys):
    before = snapshot(practice)
    shown = json.loads(dry(capsys, practice, one_day_before, "json"))
    assert snapshot(practice) == before
    [row] = [k for k in shown if k["kind"] == "appointment_reminder"]
    # Ann's and Ben's two-day reminders become one-day ones; Dee gets two; Cal's two go
    assert (row["queued"], row["cancelled"], row["moved"]) == (2, 2, 2)
    moves = {e["appointment"]: (e["was"], e["send_at"]) for e in row["examples"] if e["change"] == "moved"}
    assert moves == {"a1": ("2026-03-02T16:00:00+00:00", "2026-03-03T16:00:00+00:00"),
                     "a2": ("2026-03-02T17:00:00+00:00", "2026-03-03T17:00:00+00:00")}
    table = dry(capsys, practice, one_day_before, "table")
    assert "moved      appointment a1 (patient 1): 2026-03-02 11:00 EST -> 2026-03-03 11:00 EST" in table
    assert "not previewed (not in [message_kinds] enabled): new_idea" in table
    assert "Ann" not in table and "+1212" not in table  # keys only
    assert snapshot(practice) == before

    pending = reminders(practice, MessageStatus.NOT_SENT)
    kinds = load_kinds(practice.config.message_kinds.enabled, one_day_before)
    plan_once(practice.engine, kinds, practice.config, practice.clock)
    now_pending = reminders(practice, MessageStatus.NOT_SENT)
    assert len(now_pending - pending) == row["queued"] + row["moved"]
    assert len(pending - now_pending) == row["cancelled"] + row["moved"]
    assert {("a1", datetime.fromisoformat(moves["a1"][1])), ("a2", datetime.fromisoformat(moves["a2"][1]))} <= now_pending


def test_the_command_line_previews_and_refuses_kinds_dir_without_dry_run(practice, one_day_before, capsys):
    before = snapshot(practice)
    out = run_cli(capsys, practice, "plan", "--dry-run", "--kinds-dir", str(one_day_before))  # on the real clock
    assert out.startswith(f"Planning now with the kinds in {one_day_before} would change (nothing was written):")
    assert snapshot(practice) == before
    try:
        assert cli.main(["plan", "--kinds-dir", str(one_day_before), "--config", str(practice.config_path)]) == 2
    finally:
        structlog.reset_defaults()
    assert "only previews" in capsys.readouterr().err
    assert snapshot(practice) == before
