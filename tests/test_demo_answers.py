"""The demo shows what the front desk must see: at least one patient who confirmed and then declined
is on Needs attention as a changed answer, with both answers in the message's history."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from vitalsync.app.demo import run_demo
from vitalsync.console.access import Scope
from vitalsync.console.attention import attention
from vitalsync.console.queries import Filter, message_log
from vitalsync.core.db import session
from vitalsync.status.tables import Reply


def test_a_demo_run_has_a_changed_answer_on_needs_attention(tmp_path):
    runtime = run_demo(tmp_path / "home", days=1, seed=3, start=date(2026, 11, 26)).runtime
    items = [i for i in attention(runtime.engine, runtime.clock.now(), Scope()) if i["what"].startswith("changed answer")]
    assert items, "no changed answer in the demo"
    assert "changed answer: now declined" in {i["what"] for i in items}
    with session(runtime.engine) as db:
        changed = db.exec(select(Reply).where(Reply.changed)).all()
    assert len(changed) == len(items)
    rows = {row["id"]: row for row in message_log(runtime.engine, Filter())}
    for reply in changed:  # the simulated patients change their minds both ways (family phones cross answers)
        answers = [h["status"] for h in rows[reply.message_id]["history"] if h["source"] == "reply"]
        assert {"confirmed", "declined"} <= set(answers) and rows[reply.message_id]["status"] == answers[-1], answers
