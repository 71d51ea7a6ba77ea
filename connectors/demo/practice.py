"""The synthetic practice: two dental offices, their patients, appointments from a week before
``start`` to ``weeks`` after it, and the changes the front desk makes meanwhile.

Everything is drawn from one ``random.Random(seed)`` in a fixed order: the same (seed, start,
patients, weeks) always gives the same practice.
"""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.sync.connector import (AppointmentRecord, LocationRecord, OptOutRecord, PatientRecord,
                                      PickupRecord, ProviderRecord, RecallRecord)

FIRST = ("James", "Mary", "Robert", "Linda", "Michael", "Emily", "David", "Sarah", "Kevin", "Grace",
         "Thomas", "Hannah", "Daniel", "Olivia", "Brian", "Chloe", "Aisha", "Wei", "Noah", "Zoe")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
        "Thompson", "Moore", "Clark", "Lewis", "Walker", "Young", "Patel", "Nguyen", "O'Brien")
HISPANIC_FIRST = ("José", "María", "Luis", "Carmen", "Javier", "Lucía", "Miguel", "Sofía", "Carlos",
                  "Ana", "Diego", "Valentina", "Alejandro", "Isabel", "Mateo", "Camila")
HISPANIC_LAST = ("García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez",
                 "Sánchez", "Ramírez", "Torres", "Flores", "Núñez", "Peña", "Castillo")
DOMAINS = ("example.com", "example.org")

LOCATIONS = (LocationRecord("1", "Riverside Dental", "America/New_York", "+12125550100"),
             LocationRecord("2", "Hillcrest Dental", "America/Chicago", "+13125550100"))
PROVIDERS = (ProviderRecord("1", "Dr. Maya Chen", "1"), ProviderRecord("2", "Dr. Samuel Ortiz", "1"),
             ProviderRecord("3", "Priya Nair, RDH", "1"), ProviderRecord("4", "Laura Kim, RDH", "1"),
             ProviderRecord("5", "Dr. Daniel Brooks", "2"), ProviderRecord("6", "Dr. Elena Vargas", "2"),
             ProviderRecord("7", "Megan Foster, RDH", "2"), ProviderRecord("8", "Rosa Delgado, RDH", "2"))
HYGIENISTS = {"3", "4", "7", "8"}
DENTIST_TYPES = (("Exam", 30), ("Exam", 30), ("Consult", 30), ("Filling", 45), ("Filling", 60), ("Crown", 60))
HYGIENE_TYPES = (("Hygiene", 60), ("Hygiene", 45), ("Perio Maintenance", 60))
OPENS, CLOSES = 8 * 60, 17 * 60  # minutes of the day
AREA_CODES = {"America/New_York": ("212", "646"), "America/Chicago": ("312", "773"),
              "America/Denver": ("303", "720"), "America/Los_Angeles": ("213", "310")}
OTHER_ZONES = ("America/Denver", "America/Los_Angeles")
ZONES = {loc.key: ZoneInfo(loc.timezone) for loc in LOCATIONS}


@dataclass(frozen=True)
class Change:
    """One edit at the front desk: ``record`` is the row as it is from ``at`` on."""

    at: datetime  #: UTC
    record: AppointmentRecord | PickupRecord | PatientRecord
    deleted: bool = False  #: the appointment was deleted, not changed


@dataclass
class Practice:
    patients: list[PatientRecord]
    appointments: list[AppointmentRecord]
    recalls: list[RecallRecord]
    pickups: list[PickupRecord]
    opt_outs: list[OptOutRecord]
    changes: list[Change]  #: sorted by ``at``
    families: list[list[str]]  #: patient keys; the first is the guarantor
    locations: tuple[LocationRecord, ...] = LOCATIONS
    providers: tuple[ProviderRecord, ...] = PROVIDERS


class _Phones:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def new(self, zone: str) -> str:
        while True:
            exchange = self.rng.randrange(200, 1000)
            number = f"+1{self.rng.choice(AREA_CODES[zone])}{exchange}{self.rng.randrange(10000):04d}"
            # N11 and 555 exchanges are service or fictional numbers: no real patient has one
            if exchange % 100 == 11 or exchange == 555 or number in self.used:
                continue
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                self.used.add(number)
                return number


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace("'", "").lower()


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), zone)


def build(seed: int, start: date, patients: int, weeks: int) -> Practice:
    rng = random.Random(seed)
    phones = _Phones(rng)
    people, home, families, spare, opt_outs = _patients(rng, phones, patients)
    active = [p.key for p in people if p.active]
    in_family = {key for family in families for key in family}
    # patients overdue for a visit: no appointment booked ahead, so their recalls are due
    lapsed = set(rng.sample(sorted(set(active) - in_family, key=int), len(active) // 8))
    appointments = _appointments(rng, start, weeks, people, home, families, lapsed)
    others = rng.sample(sorted(set(active) - lapsed, key=int), len(active) * 3 // 10 - len(lapsed))
    recalls = [RecallRecord(str(8001 + i), key, start + timedelta(rng.randint(-14, weeks * 7)),
                            "Perio" if rng.random() < 0.2 else "Prophy")
               for i, key in enumerate(sorted(lapsed.union(others), key=int))]
    changes = _appointment_changes(rng, start, weeks, appointments)
    pickups = []
    reachable = [p for p in people if p.active and (p.mobile or p.email)]
    for i, p in enumerate(rng.sample(reachable, min(20, len(reachable)))):
        ready = _local(start + timedelta(rng.randrange(5)), rng.randint(20, 31) * 30, ZONES[home[p.key]])
        pickups.append(PickupRecord(str(9001 + i), p.key, home[p.key], ready))
        if rng.random() < 0.5:
            later = ready + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 5))
            changes.append(Change(later.astimezone(UTC), replace(pickups[-1], picked_up=True)))
    ny = ZONES["1"]
    by_key = {p.key: p for p in people}
    for key in spare[:4]:  # a patient got a new mobile number
        p = by_key[key]
        at = _local(start + timedelta(rng.randrange(min(14, weeks * 7))), rng.randint(540, 1020), ny)
        zone = p.timezone or LOCATIONS[int(home[key]) - 1].timezone
        changes.append(Change(at.astimezone(UTC), replace(p, mobile=phones.new(zone))))
    end = _local(start + timedelta(weeks * 7), 0, ny).astimezone(UTC)
    changes = sorted((c for c in changes if c.at < end), key=lambda c: c.at)
    return Practice(people, appointments, recalls, pickups, opt_outs, changes, families)


def _patients(rng: random.Random, phones: _Phones, n: int):
    keys = [str(1001 + i) for i in range(n)]
    units, i = [], 0
    for _ in range(min(max(15, n * 3 // 40), n // 6)):
        size = rng.choice((2, 2, 3, 3, 4))
        units.append(keys[i:i + size])
        i += size
    n_families = len(units)
    units += [[k] for k in keys[i:]]
    spanish, count = set(), 0
    for u in rng.sample(range(len(units)), len(units)):
        if count >= n // 10:
            break
        spanish.add(u)
        count += len(units[u])
    singles = rng.sample(range(n_families, len(units)), len(units) - n_families)
    kinds, pos = {}, 0
    for kind, share in (("none", 0.03), ("landline", 0.05), ("email", 0.02), ("mobile", 0.15)):
        take = max(1, round(n * share))
        kinds.update((u, kind) for u in singles[pos:pos + take])
        pos += take
    texters = [u for u in singles if kinds.get(u, "both") in ("both", "mobile")]
    flags = {}
    for flag, share in (("inactive", 0.01), ("no_sms", 0.02), ("opted_out", 0.02), ("no_email", 0.01)):
        take = max(1, round(n * share))
        flags[flag], texters = set(texters[:take]), texters[take:]
    people, home = [], {}
    for u, members in enumerate(units):
        location = LOCATIONS[0] if rng.random() < 0.55 else LOCATIONS[1]
        r = rng.random()
        tz = rng.choice(OTHER_ZONES) if r < 0.05 else location.timezone if r < 0.25 else None
        kind = kinds.get(u, "both")
        hispanic = u in spanish or rng.random() < 0.15
        last = rng.choice(HISPANIC_LAST if hispanic else LAST)
        mobile = phones.new(tz or location.timezone) if kind in ("both", "mobile") else None
        has_landline = kind == "landline" or (mobile and rng.random() < 0.2)
        landline = phones.new(tz or location.timezone) if has_landline else None
        email = None
        for j, key in enumerate(members):
            first = rng.choice(HISPANIC_FIRST if hispanic else FIRST)
            if j == 0 and kind in ("both", "email"):
                email = f"{_ascii(first)}.{_ascii(last)}{key}@{rng.choice(DOMAINS)}"
            people.append(PatientRecord(
                key, first, last, mobile=mobile, landline=landline, email=email,
                sms_ok=u not in flags["no_sms"], email_ok=u not in flags["no_email"],
                language="es" if u in spanish else "en", timezone=tz, guarantor_key=members[0],
                active=u not in flags["inactive"]))
            home[key] = location.key
    opt_outs = [OptOutRecord(units[u][0], Channel.SMS) for u in sorted(flags["opted_out"])]
    return people, home, units[:n_families], [units[u][0] for u in texters], opt_outs


def _appointments(rng, start, weeks, people, home, families, lapsed) -> list[AppointmentRecord]:
    everyone = {loc.key: [p.key for p in people if home[p.key] == loc.key] for loc in LOCATIONS}
    booked = {loc: [key for key in keys if key not in lapsed] for loc, keys in everyone.items()}
    active = {p.key for p in people if p.active}
    family_pool = {loc.key: [f for f in families if home[f[0]] == loc.key and active.issuperset(f)]
                   for loc in LOCATIONS}
    out: list[AppointmentRecord] = []
    for day in (start + timedelta(d) for d in range(-7, weeks * 7)):
        if day.weekday() >= 5:
            continue
        pool = everyone if day < start else booked
        for provider in PROVIDERS:
            loc = provider.location_key
            if not pool[loc]:
                continue
            types = HYGIENE_TYPES if provider.key in HYGIENISTS else DENTIST_TYPES
            minute = OPENS
            while minute < CLOSES:
                if rng.random() < 0.05:
                    minute += rng.choice((15, 30))
                    continue
                kind, length = rng.choice(types)
                # families book back to back so reminders can be grouped into one message
                as_family = family_pool[loc] and rng.random() < 0.12
                group = rng.choice(family_pool[loc]) if as_family else [rng.choice(pool[loc])]
                if minute + length > CLOSES:
                    break
                for key in group:
                    if minute + length > CLOSES:
                        break
                    begin = _local(day, minute, ZONES[loc])
                    out.append(AppointmentRecord(
                        str(50001 + len(out)), key, loc, begin, begin + timedelta(minutes=length),
                        _status(rng, day, start), provider.key, kind))
                    minute += length
    return out


def _status(rng: random.Random, day: date, start: date) -> AppointmentStatus:
    if day >= start:
        return AppointmentStatus.SCHEDULED
    r = rng.random()
    return (AppointmentStatus.NO_SHOW if r < 0.04 else AppointmentStatus.CANCELLED if r < 0.07
            else AppointmentStatus.COMPLETED)


def _appointment_changes(rng, start, weeks, appointments) -> list[Change]:
    upcoming = sorted((a for a in appointments if a.status is AppointmentStatus.SCHEDULED),
                      key=lambda a: a.start)
    starts = [a.start for a in upcoming]
    used: set[int] = set()
    changes = []
    for d in range(weeks * 7):
        day = start + timedelta(d)
        # the first days are busy so a short demo still shows cancellations and moves
        count = 10 if d < 5 else rng.randint(0 if day.weekday() >= 5 else 1, 3)
        for _ in range(count):
            at = _local(day, 420 + rng.randrange(720), ZONES["1"]).astimezone(UTC)
            lo = bisect_left(starts, at + timedelta(hours=2))
            hi = bisect_left(starts, at + timedelta(days=10))
            picks = [i for i in (rng.randrange(lo, hi) for _ in range(8)) if i not in used] if lo < hi else []
            if not picks:
                continue
            used.add(picks[0])
            appt, r = upcoming[picks[0]], rng.random()
            moved = _move(rng, appt, at) if 0.4 <= r < 0.75 else None
            if r >= 0.75:
                changes.append(Change(at, appt, deleted=True))
            else:
                changes.append(Change(at, moved or replace(appt, status=AppointmentStatus.CANCELLED)))
    return changes


def _move(rng: random.Random, appt: AppointmentRecord, at: datetime) -> AppointmentRecord | None:
    length = appt.end - appt.start
    shifts = [timedelta(hours=h) for h in (-2, -1, 1, 2, 3)]
    shifts += [timedelta(days=d) for d in (-2, -1, 1, 2, 3, 7)]
    rng.shuffle(shifts)
    for shift in shifts:
        begin = appt.start + shift  # wall-clock arithmetic in the location's zone
        if (begin.weekday() < 5 and time(8) <= begin.time() and (begin + length).time() <= time(17)
                and begin > at + timedelta(hours=2)):
            return replace(appt, start=begin, end=begin + length)
    return None
