"""The write-back outbox: only the latest answer per appointment reaches the PMS, each once; the
daemon's ``run --once`` writes it; nothing is queued while write-back is off. The connector is the
in-memory fake (its ``write_answer``); the Open Dental API over HTTP is in
tests/connectors/test_opendental_writeback.py. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from vitalsync.app.daemon import run_once
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.errors import ConfigError, RetryLater
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.status.record import record_reply
from vitalsync.status.tables import PmsWrite
from vitalsync.status.writeback import backoff, write_back_once, write_back_state

PHONE = "+12125550001"
WRITING = '[connector]\ntype = "opendental"\nurl = "mysql://reader@127.0.0.1:9/od"\nwrite_back = true\n'


@pytest.fixture
def config(write_config, database_url):
    return load_config(write_config(f'[database]\nurl = "{database_url}"\n[clinic]\nname = "Test Dental"\n' + WRITING))


def family_message(runtime, members: int = 2) -> None:
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        message = Message(key="family", kind="appointment_reminder", channel="sms", address=PHONE, patient_key="p1",
                          asks_reply=True, send_at=now, status="sent", status_at=now, provider_ref="SMfamily",
                          created_at=now, sent_at=now)
        db.add(message)
        db.flush()
        for position in range(members):
            db.add(MessageTarget(message_id=message.id, position=position, appointment_key=f"a{position + 1}",
                                 patient_key=f"p{position + 1}", appointment_version=1))
        db.commit()


def reply(runtime, body: str) -> None:
    runtime.clock.advance(timedelta(minutes=1))
    with session(runtime.engine) as db:
        record_reply(db, runtime.config, "sms", PHONE, body, runtime.clock.now())
        db.commit()


def writes(runtime) -> list[tuple[str, str, str]]:
    with session(runtime.engine) as db:
        return [(w.appointment_key, w.answer, w.status) for w in db.exec(select(PmsWrite).order_by(PmsWrite.id))]


def test_a_changed_answer_replaces_the_one_not_yet_written_and_a_repeat_writes_nothing(runtime, connector):
    family_message(runtime)
    reply(runtime, "C1")
    reply(runtime, "N1")  # changed her mind before the PMS had the first answer
    reply(runtime, "C2")
    assert writes(runtime) == [("a1", "confirmed", "superseded"), ("a1", "declined", "pending"),
                               ("a2", "confirmed", "pending")]
    assert write_back_once(runtime.engine, connector, runtime.clock.now()).written == 2
    assert connector.written == [("a1", "declined"), ("a2", "confirmed")]

    reply(runtime, "C2")  # the same answer again: the PMS has it
    reply(runtime, "C1")  # a1 changes again, after its decline was written: written too
    write_back_once(runtime.engine, connector, runtime.clock.now())
    assert connector.written == [("a1", "declined"), ("a2", "confirmed"), ("a1", "confirmed")]
    assert write_back_state(runtime.engine)["counts"] == {
        "pending": 0, "done": 3, "held": 0, "failed": 0, "superseded": 1}


def test_the_daemon_s_once_pass_writes_back_and_backs_off_while_the_pms_is_away(runtime, connector):
    family_message(runtime, members=1)
    reply(runtime, "C")
    connector.write_fails_with = [RetryLater("the PMS is away"), RetryLater("the PMS is away")]
    run_once(runtime)
    assert connector.written == [] and writes(runtime) == [("a1", "confirmed", "pending")]
    state = write_back_state(runtime.engine)
    assert state["last_retry_error"] == "the PMS is away"
    assert state["next_attempt_at"] == runtime.clock.now() + backoff(1)

    runtime.clock.advance(backoff(1))
    run_once(runtime)  # away again: the wait doubles
    runtime.clock.advance(backoff(2) - timedelta(seconds=1))
    run_once(runtime)
    assert connector.written == []
    runtime.clock.advance(timedelta(seconds=1))
    run_once(runtime)
    assert connector.written == [("a1", "confirmed")]
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_an_unexpected_error_fails_the_write_and_the_others_still_go(runtime, connector):
    family_message(runtime)
    reply(runtime, "C1 N2")
    connector.write_fails_with = [ValueError("appointment key 'a1' is not a number")]
    report = write_back_once(runtime.engine, connector, runtime.clock.now())
    assert (report.failed, report.written) == (1, 1) and connector.written == [("a2", "declined")]
    state = write_back_state(runtime.engine)
    assert state["counts"]["failed"] == 1
    assert state["stuck"][0]["error"] == "ValueError: appointment key 'a1' is not a number"


def test_without_write_back_no_answer_is_queued(runtime, write_config, database_url, connector):
    runtime.config = load_config(write_config(f'[database]\nurl = "{database_url}"\n'))
    family_message(runtime, members=1)
    reply(runtime, "C")
    assert writes(runtime) == [] and runtime.write_back_once() is None and connector.written == []


def test_the_open_dental_answer_mapping_is_checked_when_the_config_loads(write_config):
    with pytest.raises(ConfigError, match="connector.*write_declined"):
        load_config(write_config(WRITING + 'write_declined = "Maybe"\n'))
    options = load_config(write_config(WRITING + "write_confirmed = 21\n")).connector
    assert (options.write_confirmed, options.write_declined) == (21, "Not Accepted")
