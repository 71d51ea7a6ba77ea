"""The demo connector: a deterministic synthetic practice with changes between syncs."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, time as clock_time, timedelta, timezone
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync_connectors.demo import DemoConnector

START = date(2025, 3, 3)  # a Monday
BEFORE_START = datetime(2025, 3, 3, 5, tzinfo=timezone.utc)  # midnight in New York, before any change


@pytest.fixture(scope="module")
def demo() -> DemoConnector:
    return DemoConnector(start=START)


@pytest.fixture(scope="module")
def full(demo):
    return demo.read(None, BEFORE_START)


def test_it_is_deterministic_for_a_seed():
    a, b = DemoConnector(seed=3, start=START), DemoConnector(seed=3, start=START)
    later = BEFORE_START + timedelta(days=9)
    assert a.read(None, later) == b.read(None, later)
    assert a.practice.changes == b.practice.changes
    assert DemoConnector(seed=4, start=START).read(None, later) != a.read(None, later)


def test_building_and_reading_the_practice_is_fast():
    began = time.perf_counter()
    DemoConnector(seed=11, start=START).read(None, BEFORE_START)
    assert time.perf_counter() - began < 1


def test_a_full_read_has_the_expected_counts(demo, full):
    assert full.complete and full.cursor == BEFORE_START.isoformat()
    assert [(loc.key, loc.name, loc.timezone) for loc in full.locations] == [
        ("1", "Riverside Dental", "America/New_York"), ("2", "Hillcrest Dental", "America/Chicago")]
    per_location = Counter(p.location_key for p in full.providers)
    assert all(3 <= n <= 4 for n in per_location.values()) and set(per_location) == {"1", "2"}
    assert len(full.patients) == 400
    assert 2500 <= len(full.appointments) <= 3500
    assert 0.25 <= len(full.recalls) / 400 <= 0.35
    assert {r.type for r in full.recalls} == {"Prophy", "Perio"}
    assert len(full.pickups) == 20
    assert "400 patients" in demo.check() and "2 locations" in demo.check()


def test_keys_are_unique(full):
    for rows in (full.locations, full.providers, full.patients, full.appointments, full.recalls,
                 full.pickups):
        keys = [r.key for r in rows]
        assert len(keys) == len(set(keys))


def test_families_share_a_guarantor_and_a_mobile(full):
    families = Counter(p.guarantor_key for p in full.patients)
    families = {g for g, n in families.items() if n > 1}
    assert len(families) >= 15
    for guarantor in families:
        members = [p for p in full.patients if p.guarantor_key == guarantor]
        assert 2 <= len(members) <= 4
        assert len({p.mobile for p in members}) == 1 and members[0].mobile


def test_the_awkward_patients_exist(full):
    patients = full.patients
    assert 30 <= sum(p.language == "es" for p in patients) <= 60
    assert any(p.first_name in ("José", "María", "Lucía", "Sofía") for p in patients)
    assert sum(p.landline is not None and p.mobile is None and p.email is None for p in patients) >= 10
    assert sum(not (p.mobile or p.landline or p.email) for p in patients) >= 5
    assert any(p.email and not p.mobile and not p.landline for p in patients)
    assert sum(bool(p.mobile and p.email) for p in patients) >= 0.6 * len(patients)
    assert any(not p.active for p in patients) and any(not p.sms_ok and p.mobile for p in patients)
    zones = {p.timezone for p in patients}
    assert None in zones and zones & {"America/Denver", "America/Los_Angeles"}
    assert all(p.email.endswith(("@example.com", "@example.org")) for p in patients if p.email)


def test_opted_out_patients_still_have_a_mobile(full):
    assert 4 <= len(full.opt_outs) <= 12
    mobiles = {p.key: p.mobile for p in full.patients}
    assert all(o.channel is Channel.SMS and mobiles[o.patient_key] for o in full.opt_outs)


def test_every_phone_is_a_valid_e164_number(demo, full):
    phones = [loc.phone for loc in full.locations]
    phones += [n for p in full.patients for n in (p.mobile, p.landline) if n]
    phones += [c.record.mobile for c in demo.practice.changes if hasattr(c.record, "mobile")]
    for number in phones:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number


def test_all_times_are_time_zone_aware(demo, full):
    times = [t for a in full.appointments for t in (a.start, a.end)]
    times += [u.ready_at for u in full.pickups] + [c.at for c in demo.practice.changes]
    assert all(t.tzinfo is not None and t.utcoffset() is not None for t in times)


def test_appointments_are_in_opening_hours_and_past_ones_are_done(full):
    for a in full.appointments:
        assert a.start.weekday() < 5 and 8 <= a.start.hour and a.end.time() <= clock_time(17)
        assert START - timedelta(days=7) <= a.start.date() < START + timedelta(weeks=6)
        past = a.start.date() < START
        assert (a.status is not AppointmentStatus.SCHEDULED) == past
    assert any(a.status is AppointmentStatus.NO_SHOW for a in full.appointments)


def test_family_members_often_come_on_the_same_day(demo, full):
    head = {k: f[0] for f in demo.practice.families for k in f}
    days: dict[tuple, set] = {}
    for a in full.appointments:
        if a.patient_key in head and START <= a.start.date() < START + timedelta(days=7):
            days.setdefault((head[a.patient_key], a.start.date()), set()).add(a.patient_key)
    assert sum(len(members) > 1 for members in days.values()) >= 10


def test_changes_come_before_the_appointment_and_crowd_the_first_days(demo, full):
    original = {a.key: a for a in full.appointments}
    new_york = ZoneInfo("America/New_York")
    per_day = Counter(c.at.astimezone(new_york).date() for c in demo.practice.changes)
    assert all(per_day[START + timedelta(days=d)] >= 8 for d in range(5))
    kinds = Counter()
    for c in demo.practice.changes:
        assert BEFORE_START < c.at < BEFORE_START + timedelta(weeks=6, hours=1)
        if c.record.key in original:
            assert c.at < original[c.record.key].start
            moved = c.record.start != original[c.record.key].start
            kinds["deleted" if c.deleted else "moved" if moved else c.record.status] += 1
    assert kinds["deleted"] and kinds["moved"] and kinds[AppointmentStatus.CANCELLED]


@pytest.mark.parametrize("days", [(1, 3), (0, 14)])
def test_an_incremental_read_reports_exactly_what_changed_in_the_window(demo, days):
    since, now = (BEFORE_START + timedelta(days=d) for d in days)
    before, after = demo.read(None, since), demo.read(None, now)
    batch = demo.read(since.isoformat(), now)
    assert not batch.complete and batch.cursor == now.isoformat()
    old = {a.key: a for a in before.appointments}
    new = {a.key: a for a in after.appointments}
    changed = {k for k, a in new.items() if old.get(k) != a}
    assert changed and {a.key for a in batch.appointments} == changed
    assert set(batch.deleted_appointments) == set(old) - set(new) != set()
    assert set(batch.patients) == set(after.patients) - set(before.patients)
    if days == (0, 14):
        assert batch.patients and batch.pickups
    assert set(batch.pickups) == set(after.pickups) - set(before.pickups)
    assert not (batch.locations or batch.providers or batch.recalls or batch.opt_outs)


def test_chained_incremental_reads_add_up_to_a_full_read(demo, full):
    appointments = {a.key: a for a in full.appointments}
    pickups, patients = set(full.pickups), {p.key: p for p in full.patients}
    cursor, now = full.cursor, BEFORE_START
    for _ in range(6 * 7 * 3):
        now += timedelta(hours=8)
        batch = demo.read(cursor, now)
        cursor = batch.cursor
        appointments.update((a.key, a) for a in batch.appointments)
        for key in batch.deleted_appointments:
            del appointments[key]
        pickups = {u for u in pickups if u.key not in {b.key for b in batch.pickups}} | set(batch.pickups)
        patients.update((p.key, p) for p in batch.patients)
    last = demo.read(None, now)
    assert appointments == {a.key: a for a in last.appointments}
    assert pickups == set(last.pickups) and patients == {p.key: p for p in last.patients}


def test_an_incremental_read_of_a_quiet_window_is_empty(demo):
    now = BEFORE_START - timedelta(hours=1)
    batch = demo.read((now - timedelta(days=1)).isoformat(), now)
    assert batch.rows == 0 and batch.cursor == now.isoformat()


def test_a_later_full_read_reflects_cancellations_moves_and_deletes(demo, full):
    later = demo.read(None, BEFORE_START + timedelta(weeks=6))
    old = {a.key: a for a in full.appointments}
    new = {a.key: a for a in later.appointments}
    changes = [c for c in demo.practice.changes if c.record.key in old]
    for c in changes:
        assert (c.record.key not in new) if c.deleted else new[c.record.key] == c.record
    assert any(new[c.record.key].status is AppointmentStatus.CANCELLED for c in changes if not c.deleted)
    assert any(new[c.record.key].start != old[c.record.key].start for c in changes if not c.deleted)
    assert not any(u.picked_up for u in full.pickups) and any(u.picked_up for u in later.pickups)
    mobiles = {p.key: p.mobile for p in full.patients}
    assert any(p.mobile != mobiles[p.key] for p in later.patients)


def test_a_cursor_that_is_not_a_time_needs_a_person(demo):
    with pytest.raises(PersonMustAct):
        demo.read("yesterday", BEFORE_START)
