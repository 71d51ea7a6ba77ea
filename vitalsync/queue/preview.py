"""``plan --dry-run``: what a planning pass would change in the queue now, written nowhere.

It reads the same snapshot ``plan_once`` reads and runs the same rules (with the kinds given, so a
site's edited kind files can be tried before they take effect), then compares the plan with the
queue: per kind, the messages it would queue, the pending ones it would cancel, and those it would
move (a cancel and a new message for the same kind and subject: a changed offset, a moved
appointment). Examples name appointments, recalls and pick-up orders and patients by their PMS keys
only, never a name or an address.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import col, select

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.queue.planning import load_snapshot
from vitalsync.queue.tables import Message
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.plan import plan

EXAMPLES = 3  #: examples per kind and change


@dataclass
class Change:
    change: str  #: queued, cancelled or moved
    kind: str
    patient: str
    appointment: str | None
    subject: str | None
    send_at: datetime | None  #: the new send time (None when cancelled)
    was: datetime | None = None  #: the pending message's send time (None when newly queued)
    reason: str = ""


@dataclass
class KindPreview:
    kind: str
    queued: int = 0
    cancelled: int = 0
    moved: int = 0
    examples: list[Change] = field(default_factory=list)


def preview(engine: Engine, kinds: dict[str, MessageKind], config: Config, clock: Clock) -> list[KindPreview]:
    """Per kind (those with a change), what planning with ``kinds`` would change now. Writes nothing."""
    now = clock.now()
    with session(engine) as db:
        snap = load_snapshot(db, kinds, config, now, now + timedelta(days=config.daemon.plan_ahead_days))
        result = plan(list(kinds.values()), snap)
        ids = [c.message_id for c in result.cancels]
        pending = {m.id: m for m in db.exec(select(Message).where(col(Message.id).in_(ids)))} if ids else {}
    # the session closes without a commit: planning's rules are pure and nothing was added to it
    new: dict[tuple, list[Change]] = defaultdict(list)
    for m in result.messages:
        new[(m.kind, m.appointment_key or m.subject_key)].append(
            Change("queued", m.kind, m.patient_key, m.appointment_key, m.subject_key, m.send_at))
    gone: dict[tuple, list[Change]] = defaultdict(list)
    for cancel in result.cancels:
        m = pending.get(cancel.message_id)
        if m is not None:
            gone[(m.kind, m.appointment_key or m.subject_key)].append(
                Change("cancelled", m.kind, m.patient_key, m.appointment_key, m.subject_key, None, m.send_at, cancel.reason))
    changes: list[Change] = []
    for key in sorted(set(new) | set(gone), key=lambda k: (k[0], k[1] or "")):
        added = sorted(new.get(key, []), key=lambda c: c.send_at)
        removed = sorted(gone.get(key, []), key=lambda c: c.was)
        for old, fresh in zip(removed, added):  # the same subject's message, at another time
            changes.append(Change("moved", fresh.kind, fresh.patient, fresh.appointment, fresh.subject, fresh.send_at,
                                  old.was, old.reason))
        changes += removed[len(added):] + added[len(removed):]
    by_kind: dict[str, KindPreview] = {}
    for change in changes:
        entry = by_kind.setdefault(change.kind, KindPreview(change.kind))
        setattr(entry, change.change, getattr(entry, change.change) + 1)
        if sum(e.change == change.change for e in entry.examples) < EXAMPLES:
            entry.examples.append(change)
    return [by_kind[kind] for kind in sorted(by_kind)]
