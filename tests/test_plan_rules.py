"""The pure planner, table-driven: catch-up (issue 11 point 9), one message per address at a time
(point 10) and the frequency cap with its priorities (point 11). No database: a snapshot is built
by hand and ``plan`` runs on it, as the planning pass does with one read from the mirror.

The clinic is in New York with the default schedule (Monday to Saturday, 9:00 to 19:00, quiet hours
20:00 to 9:00); "install" is Monday 2 March 2026, 8:00, the first planning pass.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vitalsync.core.config import STOCK_KINDS, Config, ScheduleConfig
from vitalsync.core.vocab import DecisionKind
from vitalsync.mirror.tables import Appointment, Location, Patient, Pickup, Recall
from vitalsync.rules.kinds import load_kinds
from vitalsync.rules.pacing import Booked, Limits
from vitalsync.rules.plan import plan
from vitalsync.rules.schedule import base_window
from vitalsync.rules.snapshot import Snapshot

NY = ZoneInfo("America/New_York")
KINDS = load_kinds(STOCK_KINDS)
INSTALL = datetime(2026, 3, 2, 8, 0, tzinfo=NY)
NINE = datetime(2026, 3, 2, 9, 0, tzinfo=NY)


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=NY)


def person(key: str, **extra) -> Patient:
    extra.setdefault("mobile", f"+1212555{int(key):04d}")
    return Patient(key=key, first_name=f"P{key}", last_name="Doe", **extra)


def visit(key: str, patient: str, start: datetime, **extra) -> Appointment:
    return Appointment(key=key, patient_key=patient, location_key="1", start=start, end=start + timedelta(minutes=30),
                       first_seen_at=INSTALL, changed_at=INSTALL, **extra)


def snapshot(patients, appointments=(), recalls=(), pickups=(), now=INSTALL, limits=True, booked=(), existing=(),
             **schedule) -> Snapshot:
    config = Config(schedule=ScheduleConfig(**schedule))
    phones = {}
    for p in patients:
        for address in {p.mobile, p.email} - {None}:
            phones[address] = phones.get(address, 0) + 1
    return Snapshot(
        now=now, horizon=now + timedelta(days=3), default_tz=NY,
        windows={"": base_window(config), "1": base_window(config, "1", "America/New_York")},
        patients={p.key: p for p in patients}, locations={"1": Location(key="1", name="Main", timezone="America/New_York")},
        appointments={a.key: a for a in appointments}, recalls=list(recalls), pickups={p.key: p for p in pickups},
        address_count=phones, existing_keys=set(existing), limits=Limits.from_config(config.schedule) if limits else None, booked=list(booked))


def run(snap: Snapshot, *kinds: str):
    return plan([KINDS[name] for name in kinds], snap)


def sends(result) -> dict[tuple[str, str], datetime]:
    """(kind, offset in the key) -> send time."""
    return {(m.kind, m.key.split("|")[2]): m.send_at for m in result.messages}


def notes(result, decision=None):
    return [n for n in result.notes if decision is None or n.decision == decision]


# --- point 9: catch-up -------------------------------------------------------------------------

@pytest.mark.parametrize(("due_in_days", "expected"), [
    (10, [NINE]),             # -14d passed 4 days ago, due date ahead: goes at the next allowed time
    (1, [NINE]),              # passed 13 days ago: still ahead of the due date, still goes
    (20, []),                 # -14d is in 6 days: not due yet, beyond the planning horizon
    (-1, []),                 # due yesterday: -14d is past the trigger, +7d is 6 days ahead
    (-10, [NINE]),            # +7d passed 3 days ago, within the recall's 7-day late_grace
    (-20, []),                # +7d passed 13 days ago: too late
])
def test_a_recall_found_late_catches_up_while_its_due_date_is_ahead(due_in_days, expected):
    due = INSTALL.date() + timedelta(days=due_in_days)
    result = run(snapshot([person("1")], recalls=[Recall(key="R1", patient_key="1", due=due)]), "recall")
    assert [m.send_at for m in result.messages] == expected
    assert len(result.messages) <= 1, "never both offsets of one recall at once"


def test_the_catch_up_is_the_kinds_choice_a_kind_without_it_skips_the_passed_send_time():
    recall = Recall(key="R1", patient_key="1", due=INSTALL.date() + timedelta(days=10))
    strict = KINDS["recall"].model_copy(update={"catch_up": False, "late_grace": timedelta(hours=1)})
    result = plan([strict], snapshot([person("1")], recalls=[recall]))
    assert result.messages == []
    assert [n.decision for n in notes(result)] == [DecisionKind.SKIPPED]
    assert "had passed when it was first planned" in notes(result)[0].reason

    caught = run(snapshot([person("1")], recalls=[recall]), "recall")
    [queued] = notes(caught, DecisionKind.QUEUED)
    assert queued.reason.startswith("catching up: its send time 2026-02-26 10:00 EST had passed")
    # due tomorrow: its -14d time is 13 days gone, past the 7-day late_grace, but the due date is ahead
    tomorrow = Recall(key="R2", patient_key="1", due=INSTALL.date() + timedelta(days=1))
    [queued] = notes(plan([strict], snapshot([person("1")], recalls=[tomorrow])), DecisionKind.SKIPPED)
    [caught] = notes(run(snapshot([person("1")], recalls=[tomorrow]), "recall"), DecisionKind.QUEUED)
    assert "(its trigger is still ahead)" in caught.reason


@pytest.mark.parametrize(("start", "expected"), [
    (ny(5, 10), [NINE]),      # pre-appointment -7d passed: goes now, before the visit
    (ny(2, 10), [NINE]),      # the visit is today at 10: 9:00 is still before it
    (ny(2, 8, 30), []),       # started before the window opens: nothing
])
def test_pre_appointment_instructions_catch_up_before_the_visit(start, expected):
    result = run(snapshot([person("1", email="p1@example.com")], [visit("A1", "1", start)]), "pre_appointment")
    assert [m.send_at for m in result.messages] == expected


def test_an_appointment_reminder_does_not_catch_up():
    result = run(snapshot([person("1")], [visit("A1", "1", ny(3, 15))]), "appointment_reminder")
    assert [m.send_at for m in result.messages] == [ny(3, 12)]  # the -3h one only; -2d is skipped
    [skip] = notes(result, DecisionKind.SKIPPED)
    assert "had passed when it was first planned" in skip.reason


@pytest.mark.parametrize(("ready", "expected"), [
    (ny(1, 16), [NINE]),                  # +1h passed yesterday: goes now; +3d (4 Mar) beyond it
    (ny(2, 7), [NINE]),                   # +1h was at 8:00, in the grace: at the window's start
    (datetime(2026, 2, 26, 16, 0, tzinfo=NY), [NINE]),  # both passed: only the +3d one, once
    (datetime(2026, 2, 10, 16, 0, tzinfo=NY), []),      # waiting for weeks: both too late
])
def test_a_pickup_found_ready_late_is_told_once(ready, expected):
    pickup = Pickup(key="O1", patient_key="1", location_key="1", ready_at=ready)
    result = run(snapshot([person("1")], pickups=[pickup]), "product_pickup")
    assert [m.send_at for m in result.messages if m.send_at < INSTALL + timedelta(days=1)] == expected
    if ready.day == 26:
        [message] = result.messages
        assert "|+4320m|" in message.key  # the +3d message
        assert any("the +4320m message catches up instead" in n.reason for n in notes(result, DecisionKind.SKIPPED))


# --- point 10: one message per address at a time ----------------------------------------------

def family(n: int = 3, **extra) -> list[Patient]:
    return [person(str(i + 1), guarantor_key="1", mobile="+12125550100", **extra) for i in range(n)]


def test_a_familys_after_appointment_texts_to_a_shared_phone_are_one_message():
    visits = [visit(f"F{i}", str(i), ny(2, 9 + i)) for i in (1, 2, 3)]
    result = run(snapshot(family(), visits, now=ny(2, 8)), "after_appointment")
    [message] = result.messages
    assert [t.appointment_key for t in message.targets] == ["F1", "F2", "F3"]
    assert len(notes(result, DecisionKind.SUPPRESSED)) == 2


def test_a_shared_email_groups_too():
    people = [person(str(i), mobile=None, email="family@example.com") for i in (1, 2)]
    visits = [visit("F1", "1", ny(2, 10)), visit("F2", "2", ny(2, 11))]
    [message] = run(snapshot(people, visits, now=ny(2, 8)), "after_appointment").messages
    assert message.channel == "email" and len(message.targets) == 2


def test_messages_to_one_address_that_do_not_group_are_spaced():
    solo = KINDS["after_appointment"].model_copy(update={"group_family": False})
    visits = [visit(f"F{i}", str(i), ny(2, 10)) for i in (1, 2, 3)]
    result = plan([solo], snapshot(family(), visits, now=ny(2, 8), cap_exempt=["after_appointment"]))
    assert sorted(m.send_at for m in result.messages) == [ny(2, 13, 30), ny(2, 14), ny(2, 14, 30)]
    assert len(notes(result, DecisionKind.DEFERRED)) == 2
    assert all("spaced 30 minutes" in n.reason for n in notes(result, DecisionKind.DEFERRED))


def test_without_limits_they_would_collide():
    """The property the spacing keeps, shown failing without it (the planner before point 10)."""
    solo = KINDS["after_appointment"].model_copy(update={"group_family": False})
    visits = [visit(f"F{i}", str(i), ny(2, 10)) for i in (1, 2, 3)]
    result = plan([solo], snapshot(family(), visits, now=ny(2, 8), limits=False))
    assert len({m.send_at for m in result.messages}) == 1


# --- point 11: the frequency cap ---------------------------------------------------------------

def test_a_recall_gives_way_to_a_pickup_on_the_same_day():
    recall = Recall(key="R1", patient_key="1", due=date(2026, 3, 12))
    pickup = Pickup(key="O1", patient_key="1", location_key="1", ready_at=ny(1, 16))
    result = run(snapshot([person("1")], recalls=[recall], pickups=[pickup]), "recall", "product_pickup")
    assert sends(result) == {("product_pickup", "+60m"): NINE, ("product_pickup", "+4320m"): ny(4, 16),
                             ("recall", "-20160m"): ny(3, 9)}
    [deferred] = notes(result, DecisionKind.DEFERRED)
    assert deferred.kind == "recall" and deferred.reason.startswith("deferred by the frequency cap (1 a day, 3 a week")


def test_a_reminder_counts_but_is_never_held_back():
    """Ann's -3h reminder and her son's caught-up recall want the same morning on the family phone: the
    reminder goes, the recall waits a day. A reminder already sent today fills the day as well."""
    recall = Recall(key="R1", patient_key="2", due=date(2026, 3, 10))
    appointment = visit("A1", "1", ny(2, 13))
    result = run(snapshot(family(2), [appointment], recalls=[recall]), "appointment_reminder", "recall")
    assert sends(result) == {("appointment_reminder", "-180m"): ny(2, 10), ("recall", "-20160m"): ny(3, 9)}

    sent = Booked(1, "appointment_reminder", "sms", "+12125550100", ny(2, 7))
    result = run(snapshot(family(2), recalls=[recall], booked=[sent]), "recall")
    assert [m.send_at for m in result.messages] == [ny(3, 9)]


def test_three_a_week():
    week = [Booked(i, "appointment_reminder", "sms", "+12125550001", ny(d, 10)) for i, d in ((1, 2), (2, 3), (3, 4))]
    recall = Recall(key="R1", patient_key="1", due=date(2026, 3, 10))
    [message] = run(snapshot([person("1")], recalls=[recall], booked=week), "recall").messages
    assert message.send_at == ny(9, 9)  # 3, 4 and 5 March are full; 6 to 8 still see three in 7 days


def test_a_queued_recall_is_deferred_when_a_higher_priority_message_takes_its_day():
    queued = Booked(7, "recall", "sms", "+12125550001", ny(3, 9), movable=True, until=ny(20, 0),
                    window=base_window(Config()), tz=NY)
    pickup = Pickup(key="O1", patient_key="1", location_key="1", ready_at=ny(3, 8))  # +1h: 9:00 on the 3rd
    result = run(snapshot([person("1")], pickups=[pickup], booked=[queued]), "product_pickup")
    assert [m.send_at for m in result.messages] == [ny(3, 9)]
    [move] = result.moves
    assert (move.message_id, move.send_at) == (7, ny(4, 9)) and "frequency cap" in move.reason

    again = run(snapshot([person("1")], pickups=[pickup], existing=[m.key for m in result.messages], booked=[
        Booked(8, "product_pickup", "sms", "+12125550001", ny(3, 9)),
        Booked(7, "recall", "sms", "+12125550001", ny(4, 9), movable=True, until=ny(20, 0),
               window=base_window(Config()), tz=NY)]), "product_pickup")
    assert again.moves == [], "planning again leaves it where it was deferred to"


def test_a_capped_message_with_no_day_left_before_its_appointment_is_skipped_with_the_reason():
    sent = Booked(1, "appointment_reminder", "sms", "+12125550001", ny(2, 7))
    snap = snapshot([person("1")], [visit("A1", "1", ny(2, 17))], booked=[sent], cap_exempt=["appointment_reminder"])
    result = run(snap, "pre_appointment")
    assert result.messages == []
    [skip] = notes(result, DecisionKind.SKIPPED)
    assert skip.reason.startswith("frequency cap (1 a day, 3 a week per address): no day left")


def test_email_is_not_capped_by_default():
    sent = Booked(1, "appointment_reminder", "email", "p1@example.com", ny(2, 7))
    recall = Recall(key="R1", patient_key="1", due=date(2026, 3, 10))
    people = [person("1", mobile=None, email="p1@example.com")]
    assert [m.send_at for m in run(snapshot(people, recalls=[recall], booked=[sent]), "recall").messages] == [NINE]


def test_the_priority_is_configurable():
    recall = Recall(key="R1", patient_key="1", due=date(2026, 3, 12))
    pickup = Pickup(key="O1", patient_key="1", location_key="1", ready_at=ny(1, 16))
    snap = snapshot([person("1")], recalls=[recall], pickups=[pickup], priority=["recall", "product_pickup"])
    assert sends(run(snap, "recall", "product_pickup")) == {
        ("recall", "-20160m"): NINE, ("product_pickup", "+60m"): ny(3, 9), ("product_pickup", "+4320m"): ny(4, 16)}


# --- the schema ---------------------------------------------------------------------------------

def test_a_bad_catch_up_names_the_file_line_and_key(tmp_path):
    from vitalsync.core.errors import ConfigError
    stock = (KINDS["recall"].source).read_text(encoding="utf-8")
    (tmp_path / "recall.toml").write_text(stock.replace("catch_up = true", 'catch_up = "sometimes"'), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_kinds(["recall"], tmp_path)
    line = stock.splitlines().index("catch_up = true") + 1
    assert f"recall.toml:{line}: catch_up: Input should be a valid boolean" in str(error.value)


def test_a_kind_name_in_the_schedule_must_exist(write_config):
    from vitalsync.core.config import load_config
    from vitalsync.core.errors import ConfigError
    path = write_config('[schedule]\npriority = ["recal"]\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f"{path}: schedule.priority: unknown kind 'recal'" in str(error.value)
