"""Group sends: staff send a manual kind ("the office is closed tomorrow") to the appointments of a
day, through the queue like any other message. SQLite and PostgreSQL.

The practice: Main Street (Dr. North) and Uptown (Dr. South), New York; appointments on Tuesday
3 March 2026. It is Monday 2 March, 10:00, when staff start the send.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import select

from vitalsync.console.queries import Filter, message_log, why
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import AppointmentStatus, Channel, MessageStatus
from vitalsync.queue import group_send
from vitalsync.queue.group_send import GroupFilter
from vitalsync.queue.tables import Decision, GroupSend, Message
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, OptOutRecord, PatientRecord, ProviderRecord

NEW_YORK = ZoneInfo("America/New_York")
TUESDAY = date(2026, 3, 3)
CLOSED = GroupFilter(kind="office_closed", day=TUESDAY)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=NEW_YORK)


def iso(moment: datetime) -> str:
    """As the log prints times: ISO 8601 in UTC."""
    return moment.astimezone(timezone.utc).isoformat()


@pytest.fixture
def practice(runtime, connector):
    p = connector.practice
    p.locations = [LocationRecord("main", "Main Street", "America/New_York"),
                   LocationRecord("up", "Uptown", "America/New_York")]
    p.providers = [ProviderRecord("north", "Dr. North", "main"), ProviderRecord("south", "Dr. South", "up")]
    p.patients = [
        PatientRecord("1", "Ann", "Doe", mobile="+12125550001"),
        PatientRecord("2", "Ben", "Doe", mobile="+12125550002", language="es"),
        PatientRecord("3", "Cal", "Doe", mobile="+12125550003"),
        PatientRecord("4", "Dee", "Doe", mobile="+12125550004"),  # opted out of texts and calls in the PMS
        PatientRecord("5", "Eve", "Roe", mobile="+12125550005"),  # Eve and Fay share a phone
        PatientRecord("6", "Fay", "Roe", mobile="+12125550005", guarantor_key="5"),
        PatientRecord("7", "Gus", "Doe", mobile="+12125550007"),
        PatientRecord("8", "Hal", "Doe", mobile="+12125550008"),
    ]
    p.opt_outs = [OptOutRecord("4", Channel.SMS), OptOutRecord("4", Channel.VOICE)]

    def book(key, patient, location, provider, start, kind="exam", **extra):
        return AppointmentRecord(key, patient, location, start, start + timedelta(minutes=30), provider_key=provider,
                                 type=kind, **extra)

    p.appointments = [
        book("a1", "1", "main", "north", at(3, 9)),
        book("a2", "2", "main", "north", at(3, 10), kind="cleaning"),
        book("a3", "3", "up", "south", at(3, 11)),
        book("a4", "4", "main", "north", at(3, 12)),
        book("a5", "5", "main", "north", at(3, 14)),
        book("a6", "6", "main", "north", at(3, 14, 30)),
        book("a7", "7", "main", "north", at(4, 9)),  # Wednesday: not in the send
        book("a8", "8", "main", "north", at(3, 15), status=AppointmentStatus.CANCELLED),
    ]
    runtime.sync_once(full=True)
    runtime.clock.set(at(2, 10))
    return runtime


def start(runtime, where: GroupFilter = CLOSED):
    return group_send.start(runtime.engine, runtime.kinds, runtime.config, where, runtime.clock.now(), started_by="cli")


def closed_messages(runtime) -> list[dict]:
    return message_log(runtime.engine, Filter(kind="office_closed"))


def counts(runtime) -> tuple[int, int, int]:
    with session(runtime.engine) as db:
        return tuple(db.exec(select(func.count()).select_from(table)).one() for table in (Message, Decision, GroupSend))


def test_the_office_closed_kind_is_manual_and_enabled_by_default(runtime):
    assert group_send.manual_kinds(runtime.kinds) == ["office_closed"]


def test_a_preview_counts_and_renders_three_examples_and_writes_nothing(practice):
    before = counts(practice)
    shown = group_send.preview(practice.engine, practice.kinds, practice.config, CLOSED, practice.clock.now())
    assert counts(practice) == before
    assert shown.plan.matched == 6  # a1-a6: not Wednesday's, not the cancelled one
    assert len(shown.plan.messages) == 4  # Ann, Ben, Cal, and one for Eve and Fay; Dee opted out
    assert shown.plan.skipped == 1 and shown.plan.already == 0
    assert [reason for reason in shown.reasons] == [
        "no usable contact (sms: opted out; email: no email address; voice: opted out)"]
    assert len(shown.examples) == 3
    first = shown.examples[0]
    assert first.channel == "sms" and first.body.startswith("Test Dental: our Main Street office is closed on Tuesday, March 3.")
    assert "Ann, your 9:00 AM appointment will not take place" in first.body
    assert "estará cerrada el martes, 3 de marzo" in shown.examples[1].body  # Ben reads Spanish


def test_a_group_send_queues_one_message_per_address_and_records_who_when_and_what(practice):
    group, plan = start(practice)
    assert (group.id, group.started_by, group.kind, group.day, group.at) == (1, "cli", "office_closed", TUESDAY, at(2, 10))
    assert (group.matched, group.queued, group.skipped, group.already) == (6, 4, 1, 0)
    rows = closed_messages(practice)
    assert sorted(tuple(r["appointments"]) for r in rows) == [("a1",), ("a2",), ("a3",), ("a5", "a6")]
    assert all(r["status"] == "not_sent" and r["send_at"] == iso(at(2, 10)) for r in rows)
    for row in rows:
        assert row["history"][0] == {"at": iso(at(2, 10)), "status": "not_sent", "source": "staff",
                                     "detail": "group send 1 started by cli"}


def test_a_family_booked_at_two_locations_gets_one_message_per_location(practice):
    practice.connector.change("a6", location_key="up", provider_key="south")
    practice.sync_once()
    start(practice)
    rows = closed_messages(practice)
    assert sorted(tuple(r["appointments"]) for r in rows) == [("a1",), ("a2",), ("a3",), ("a5",), ("a6",)]


def test_each_appointments_decision_trace_names_the_group_send(practice):
    start(practice)
    queued = why(practice.engine, "a1")["decisions"]
    assert [(d["kind"], d["decision"]) for d in queued] == [("office_closed", "queued")]
    assert queued[0]["reason"].startswith("group send 1: due; send at")
    family = why(practice.engine, "a6")["decisions"]
    assert family[0]["decision"] == "suppressed"
    assert family[0]["reason"] == "group send 1: grouped into one family message with appointment a5"


def test_an_opted_out_patient_is_skipped_with_the_reason(practice):
    start(practice)
    assert not message_log(practice.engine, Filter(kind="office_closed", patient="4"))
    [decision] = why(practice.engine, "a4")["decisions"]
    assert decision["decision"] == "skipped"
    assert decision["reason"] == ("group send 1: no usable contact (sms: opted out; email: no email address; "
                                  "voice: opted out)")


def test_the_same_group_send_again_sends_nothing_twice(practice):
    start(practice)
    practice.clock.advance(timedelta(minutes=20))
    again, plan = start(practice)
    assert (again.id, again.queued, again.already, again.skipped) == (2, 0, 5, 1)
    assert len(closed_messages(practice)) == 4


def test_a_narrower_send_first_and_the_whole_day_after_adds_only_the_rest(practice):
    uptown, _ = start(practice, GroupFilter("office_closed", TUESDAY, locations=("up",)))
    assert uptown.queued == 1 and uptown.locations == "up"
    cleaning, _ = start(practice, GroupFilter("office_closed", TUESDAY, appointment_type="cleaning"))
    assert cleaning.queued == 1
    whole, _ = start(practice)
    assert (whole.queued, whole.already) == (2, 2)
    assert len(closed_messages(practice)) == 4


def test_a_provider_filter_narrows_to_their_appointments(practice):
    shown = group_send.preview(practice.engine, practice.kinds, practice.config,
                               GroupFilter("office_closed", TUESDAY, provider="south"), practice.clock.now())
    assert shown.plan.matched == 1 and [m.appointment_key for m in shown.plan.messages] == ["a3"]


def test_planning_leaves_a_group_sends_messages_alone(practice):
    start(practice)
    practice.plan_once()
    assert {r["status"] for r in closed_messages(practice)} == {"not_sent"}


def test_dispatch_sends_them_like_any_message(practice):
    start(practice)
    practice.connector.practice.appointments[2] = AppointmentRecord(
        "a3", "3", "up", at(3, 11), at(3, 11, 30), status=AppointmentStatus.CANCELLED, provider_key="south")
    practice.sync_once()  # Cal's appointment was cancelled after the send was started
    while practice.dispatch_once().claimed:
        pass
    by_to = {o.to: o for o in practice.sender.sent if "closed" in o.body or "cerrada" in o.body}
    assert set(by_to) == {"+12125550001", "+12125550002", "+12125550005"}
    assert "Ann, your 9:00 AM appointment" in by_to["+12125550001"].body
    assert "Eve 2:00 PM, Fay 2:30 PM will not take place" in by_to["+12125550005"].body
    statuses = {tuple(r["appointments"]): (r["status"], r["reason"]) for r in closed_messages(practice)}
    assert statuses[("a3",)] == ("cancelled", "appointment cancelled since planning")


def test_the_frequency_cap_never_holds_a_closure_notice_back(practice):
    """Ann had her one text of the day an hour ago; the office-closed notice still goes today."""
    with session(practice.engine) as db:
        db.add(Message(key="recall|r1|-20160m|2026-03-16", kind="recall", channel="sms", address="+12125550001",
                       patient_key="1", send_at=at(2, 9), status=MessageStatus.RECEIVED, status_at=at(2, 9),
                       created_at=at(2, 9), sent_at=at(2, 9)))
        db.commit()
    start(practice)
    while practice.dispatch_once().claimed:
        pass
    assert any(o.to == "+12125550001" and "closed" in o.body for o in practice.sender.sent)


def test_outside_the_send_window_the_messages_wait_for_it(practice):
    practice.clock.set(at(2, 21))
    start(practice)
    assert {r["send_at"] for r in closed_messages(practice)} == {iso(at(3, 9))}


def test_only_an_enabled_manual_kind_can_be_group_sent(practice):
    with pytest.raises(PersonMustAct, match="planned automatically"):
        start(practice, GroupFilter("appointment_reminder", TUESDAY))
    with pytest.raises(PersonMustAct, match="manual kinds: office_closed"):
        start(practice, GroupFilter("holiday", TUESDAY))
    assert counts(practice)[2] == 0


# --- the command line: vitalsync send -----------------------------------------------------------


def cli_send(runtime, capsys, *extra: str) -> tuple[int, str]:
    from vitalsync.app.send import send
    from vitalsync.cli import parser
    args = parser().parse_args(["send", "--kind", "office_closed", "--date", "2026-03-03", *extra])
    code = send(runtime, args)
    return code, capsys.readouterr().out


def test_the_cli_dry_run_prints_the_count_and_three_examples_and_writes_nothing(practice, capsys):
    before = counts(practice)
    code, out = cli_send(practice, capsys, "--dry-run")
    assert code == 0 and counts(practice) == before
    assert out.startswith("kind=office_closed date=2026-03-03: 6 appointments\n  to send:  4 messages\n  skipped:  1\n")
    assert "1 × no usable contact (sms: opted out; email: no email address; voice: opted out)" in out
    assert out.count("\nExample ") == 3 and "Example 3 (sms, en, 2 appointments)" in out
    assert out.rstrip().endswith("dry run: nothing queued")


def test_the_cli_queues_only_with_yes_when_not_on_a_terminal(practice, capsys):
    code, out = cli_send(practice, capsys, "--location", "main")
    assert code == 1 and counts(practice)[0] == 0
    code, out = cli_send(practice, capsys, "--location", "main", "--yes")
    assert code == 0 and "group send 1: queued 3 messages (0 already sent, 1 skipped)" in out
    code, out = cli_send(practice, capsys, "--yes")
    assert code == 0 and "to send:  1 messages" in out and "already sent by an earlier group send: 4" in out
    assert len(closed_messages(practice)) == 4
    with session(practice.engine) as db:
        assert [(g.started_by, g.locations, g.queued) for g in db.exec(select(GroupSend).order_by(GroupSend.id))] == [
            ("cli", "main", 3), ("cli", "", 1)]
