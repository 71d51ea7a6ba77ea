"""``vitalsync demo``: a synthetic practice run through the real pipeline on a virtual clock."""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from vitalsync.app.runtime import Runtime, build
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct, SyncHeld
from vitalsync.core.vocab import AppointmentStatus, DecisionKind
from vitalsync.mirror.tables import Appointment, Recall
from vitalsync.queue import group_send
from vitalsync.queue.group_send import GroupFilter
from vitalsync.queue.tables import Decision, Message

STEP = timedelta(minutes=15)

CONFIG = """\
# A demo home made by `vitalsync demo`: the synthetic practice, SQLite, simulated patients.
[database]
url = "sqlite:///vitalsync.db"

[connector]
type = "demo"
seed = {seed}
start = {start}

[clinic]
name = "Riverside Dental"
phone = "(212) 555-0100"

[sender]
type = "fake"
seed = {seed}

[console]
enabled = true
listen = "127.0.0.1:8089"
secret_key_file = "console.key"
"""


@dataclass
class DemoResult:
    home: Path
    config_path: Path
    start: date
    days: int
    runtime: Runtime


MARKER = ".vitalsync-demo"  #: a demo home says so: only such a folder (or an empty one) is ever overwritten


def make_home(home: Path | None, seed: int, start: date, force: bool = False) -> Path:
    home = Path(home) if home else Path(tempfile.mkdtemp(prefix="vitalsync-demo-"))
    if home.exists() and not home.is_dir():
        raise PersonMustAct(f"{home} is a file, not a folder; give --home a folder for the demo")
    if home.is_dir() and any(home.iterdir()) and not _demo_home(home) and not force:
        raise PersonMustAct(
            f"{home} is not empty and is not a demo home this command made: the demo would overwrite its "
            "config.toml and delete its database. Choose an empty or new folder, or add --force to overwrite it")
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by `vitalsync demo`; running it again here replaces this folder's demo data\n",
                               encoding="utf-8")
    for stale in home.glob("vitalsync.db*"):
        stale.unlink()
    path = home / "config.toml"
    path.write_text(CONFIG.format(seed=seed, start=start.isoformat()), encoding="utf-8")
    key = home / "console.key"
    if not key.exists():
        key.touch(mode=0o600)
        key.write_text(secrets.token_hex(32), encoding="utf-8")
    return path


def _demo_home(home: Path) -> bool:
    """A folder this command made: its marker, or (made before markers) its config's first line."""
    if (home / MARKER).is_file():
        return True
    try:
        with (home / "config.toml").open(encoding="utf-8") as config:
            return config.readline().startswith("# A demo home made by `vitalsync demo`")
    except (OSError, UnicodeDecodeError):
        return False


def run_demo(home: Path | None, days: int, seed: int, start: date | None = None, progress=None,
             force: bool = False) -> DemoResult:
    """Create a home and simulate ``days`` days: nightly full syncs, hourly syncs and planning,
    dispatch and provider events every 15 minutes, all on a virtual clock."""
    start = start or date.today()
    config_path = make_home(home, seed, start, force)
    config = load_config(config_path)
    zone = ZoneInfo(config.schedule.timezone)
    clock = VirtualClock(datetime.combine(start, time(0, 0), zone))
    runtime = build(config, clock)
    end = clock.now() + timedelta(days=days)
    steps = int(timedelta(days=days) / STEP)
    full_at = config.daemon.full_sync_at
    closure_day = min(1, days - 1)  #: the day the front desk announces a closure (a group send)
    for step in range(steps):
        local = clock.now().astimezone(zone)
        if step == 0 or (local.hour, local.minute) == (full_at.hour, full_at.minute):
            _sync(runtime, full=True)
        elif local.minute == 0:
            _sync(runtime, full=False)
        if local.minute == 0:
            runtime.plan_once()
        if local.date() == start + timedelta(days=closure_day) and (local.hour, local.minute) == (10, 0):
            announce_closure(runtime, zone)
        while runtime.dispatch_once().claimed >= config.daemon.batch_size:
            pass
        runtime.status_once()
        clock.advance(STEP)
        if progress:
            progress(step + 1, steps)
    clock.set(end)
    runtime.status_once()
    return DemoResult(config_path.parent, config_path, start, days, runtime)


def announce_closure(runtime: Runtime, zone: ZoneInfo) -> None:
    """The front desk's group send: "the office is closed" to everyone booked at the first location on
    its next day with appointments (recorded as started by "demo")."""
    if "office_closed" not in runtime.kinds:
        return
    tomorrow = datetime.combine(runtime.clock.now().astimezone(zone).date() + timedelta(days=1), time(0), zone)
    with session(runtime.engine) as db:
        first = db.exec(select(Appointment).where(Appointment.start >= tomorrow,
                                                  Appointment.status == AppointmentStatus.SCHEDULED)
                        .order_by(Appointment.location_key, Appointment.start).limit(1)).first()
    if first is None:
        return
    where = GroupFilter(kind="office_closed", day=first.start.astimezone(zone).date(), locations=(first.location_key,))
    group_send.start(runtime.engine, runtime.kinds, runtime.config, where, runtime.clock.now(), started_by="demo")


def _sync(runtime: Runtime, full: bool) -> None:
    try:
        runtime.sync_once(full=full)
    except SyncHeld:
        pass  # recorded in the sync report; the demo goes on as a clinic would until a person looks


@dataclass(frozen=True)
class CatchUp:
    recall_key: str
    due: date
    message: Message


def caught_up_recalls(runtime: Runtime) -> list[CatchUp]:
    """Recalls whose send time had passed when the demo first planned them and that went anyway
    (the recall kind's ``catch_up``), with their messages: what a first sync after install sends."""
    with session(runtime.engine) as db:
        rows = db.exec(select(Message, Recall.due).join(Decision, Decision.message_id == Message.id)
                       .join(Recall, Recall.key == Message.subject_key)
                       .where(Decision.kind == "recall", Decision.decision == DecisionKind.QUEUED,
                              col(Decision.reason).startswith("catching up"))
                       .order_by(Message.send_at, Message.id)).all()
    return [CatchUp(message.subject_key, due, message) for message, due in rows]


def describe_catch_ups(result: DemoResult, shown: int = 3) -> list[str]:
    """Lines for the demo's summary: a few caught-up recalls, their send time and what became of them."""
    zone = ZoneInfo(result.runtime.config.schedule.timezone)
    found = caught_up_recalls(result.runtime)
    if not found:
        return []
    lines = [f"Catch-up: {len(found)} recalls were first planned after their send time (two weeks before they "
             "are due) had passed; each went at the next allowed time instead of never:"]
    for item in found[:shown]:
        at = (item.message.sent_at or item.message.send_at).astimezone(zone)
        lines.append(f"  recall {item.recall_key} due {item.due}: {item.message.channel} "
                     f"{'sent' if item.message.sent_at else 'queued for'} {at:%Y-%m-%d %H:%M %Z} ({item.message.status})")
    return lines
