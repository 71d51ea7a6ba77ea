"""Appointments, their history, deleted appointments and recalls for the Open Dental test database.

Appointments run from a year before ``start`` to four months after it: the past mostly Complete,
the future mostly Scheduled, with every AptStatus (Planned and UnschedList rows without a date),
families booked back to back, hygiene visits with a hygienist, and appointments deleted the way
Open Dental deletes them (a histappointment row with action 4, or the legacy deletedobject row).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from vitalsync_connectors.opendental.interval import Interval
from vitalsync_connectors.opendental.testpeople import NO_DATE, NO_DAY, People, pick

APPOINTMENT_COLUMNS = ("AptNum", "PatNum", "AptStatus", "Pattern", "Confirmed", "Op", "ProvNum", "ProvHyg",
                       "AptDateTime", "IsNewPatient", "ProcDescript", "ClinicNum", "IsHygiene",
                       "AppointmentTypeNum", "SecDateTEntry", "Priority", "DateTStamp")
HISTORY_COLUMNS = ("HistUserNum", "HistDateTStamp", "HistApptAction", "ApptSource", *APPOINTMENT_COLUMNS)
DELETED_COLUMNS = ("ObjectNum", "ObjectType", "DateTStamp")
RECALL_COLUMNS = ("RecallNum", "PatNum", "DateDueCalc", "DateDue", "DatePrevious", "RecallInterval", "RecallStatus",
                  "IsDisabled", "DateTStamp", "RecallTypeNum", "Priority")
#: operatory: (clinic, dentist, hygienist); ops 2 and 5 are hygiene chairs
OPS = {1: (1, 1, 0), 2: (1, 1, 3), 3: (2, 2, 0), 4: (0, 1, 0), 5: (0, 2, 4)}
PATTERNS = ("//XXXX//", "/XXXXX/", "//XXXXXX//", "/XXXX/", "//XXXXXXXX//", "XXXXXXX", "//XXXXXXXXXXXX//")
HYGIENE_PATTERNS = ("//XXXXXXXX//", "/XXXXXXXXX/", "///XXXXXX///")
PROCS = ("Ex, PA", "Seal, Seal", "Crown Prep", "Comp 2S", "Ext", "NP Ex, FMX", "RCT")
HYGIENE_PROCS = ("Pro, 4BW", "PerioMaint", "Pro, Ex")
PAST = ((2, 0.85), (5, 0.06), (1, 0.03), (3, 0.02), (7, 0.02), (8, 0.02))
FUTURE = ((1, 0.86), (5, 0.03), (3, 0.03), (6, 0.04), (7, 0.02), (4, 0.02))
#: the first appointments: (AptStatus, when) for every status, an UnschedList row with a stale date,
#: a Scheduled row without a date (a damaged row) and one with an empty Pattern
FIRST = ((1, "future"), (2, "past"), (3, "none"), (4, "future"), (5, "future"), (6, "none"), (7, "future"),
         (8, "past"), (3, "stale"), (1, "none"), (1, "empty"))
DELETIONS = {11: "history", 12: "legacy", 13: "both"}  #: appointments deleted in each way
DELETION_SHARES = ("history", "history", "legacy")


class Visits:
    def __init__(self, rng: random.Random, start: date, people: People) -> None:
        self.rng, self.start, self.people = rng, start, people
        self.past = [d for d in (start - timedelta(n) for n in range(1, 366)) if d.weekday() < 5]
        self.future = [d for d in (start + timedelta(n) for n in range(0, 121)) if d.weekday() < 5]
        self.apt_num = 0

    def rows(self, m: int, stamp):
        """(table, row) pairs: ``m`` appointment rows, plus history and deletion rows."""
        rng, i = self.rng, 0
        while i < m:
            patient = self.patient()
            members = self.family(patient) if i >= len(FIRST) and rng.random() < 0.04 else [patient]
            day = rng.choice(self.future if rng.random() < 0.3 else self.past)
            op = rng.choice((1, 1, 2, 3, 4, 5))
            minute = 480 + 10 * rng.randrange(48)
            for patient in members[:m - i]:
                self.apt_num += 1
                row = self.appointment(i, patient, day, op, minute, stamp())
                minute += 5 * len(row[3]) or 30
                how = DELETIONS.get(self.apt_num) or rng.random() < 0.01 and rng.choice(DELETION_SHARES)
                if how:
                    yield from self.deleted(row, how, stamp())
                    continue
                yield "appointment", row
                yield from self.history(row, first=i < len(FIRST))
                i += 1

    def history(self, row, first: bool):
        """histappointment rows: broken (2 Missed, 3 Cancelled), moved (1 Changed, holding the old
        time), and some creations (0); each kind among the first appointments."""
        rng, stamp, status, when = self.rng, row[-1], row[2], row[8]
        if status in (3, 5):
            yield "histappointment", (1, stamp, 3 if status == 3 else 2 if first else rng.choice((2, 3)), 0, *row)
        elif status == 1 and when is not NO_DATE and (first or rng.random() < 0.03):
            before = when - timedelta(days=rng.randrange(1, 8))
            yield "histappointment", (1, stamp, 1, 0, *row[:8], before, *row[9:])
        elif rng.random() < 0.05:
            yield "histappointment", (1, stamp, 0, 0, *row)

    def patient(self) -> int:
        rng, status = self.rng, self.people.status
        num = rng.randrange(1, self.people.n + 1)
        if status[num] in (2, 3, 4, 5) and rng.random() < 0.85:  # former patients rarely book
            num = rng.randrange(1, self.people.n + 1)
        return num

    def family(self, num: int) -> list[int]:
        head, guarantor = self.people.guarantor[num], self.people.guarantor
        return [q for q in range(head, min(head + 5, self.people.n + 1)) if guarantor[q] == head]

    def appointment(self, i: int, patient: int, day: date, op: int, minute: int, stamp: datetime):
        rng = self.rng
        status, when = FIRST[i] if i < len(FIRST) else (None, None)
        if when in ("future", "past", "stale", "empty"):
            day = rng.choice(self.past if when in ("past", "stale") else self.future)
        if status is None:
            status = pick(rng, FUTURE if day >= self.start else PAST)
        clinic, dentist, hygienist = OPS[op]
        hygiene = hygienist != 0
        start = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        if when == "none" or status == 6 or (status == 3 and when != "stale" and rng.random() < 0.5):
            start = NO_DATE
        pattern = "" if when == "empty" or (status in (7, 8) and rng.random() < 0.5) else \
            rng.choice(HYGIENE_PATTERNS if hygiene else PATTERNS)
        confirmed = rng.choice((1, 1, 2, 3, 4, 5, 8, 10)) if day >= self.start else rng.choice((4, 8, 9))
        entered = min(stamp, (start if start is not NO_DATE else stamp) - timedelta(days=rng.randrange(1, 90)))
        if clinic == 1 and rng.random() < 0.05:
            clinic = 0  # booked before clinics were turned on
        kind = 0 if rng.random() < 0.8 else rng.randrange(1, 5)
        return (self.apt_num, patient, status, pattern, confirmed, op, dentist, hygienist, start,
                int(rng.random() < 0.03), rng.choice(HYGIENE_PROCS if hygiene else PROCS), clinic, int(hygiene),
                kind, entered, int(rng.random() < 0.02), stamp)

    def deleted(self, row, how: str, stamp: datetime):
        if how in ("history", "both"):
            yield "histappointment", (1, stamp, 4, 0, *row[:-1], stamp)
        if how in ("legacy", "both"):
            yield "deletedobject", (row[0], 0, stamp)

    def recalls(self, stamp):
        """recall rows: most current patients have a Prophy or Perio recall, some a 4BW one too."""
        rng, num = self.rng, 0
        for patient in range(1, self.people.n + 1):
            if self.people.status[patient] not in (0, 2) or rng.random() > 0.8:
                continue
            kinds = [(3, 196608) if rng.random() < 0.15 else (1, 393216)]
            if rng.random() < 0.3:
                kinds.append((4, 16777216))
            for kind, interval in kinds:
                num += 1
                if num == 4 or rng.random() < 0.05:
                    interval = Interval(weeks=26).pack() if num == 4 else Interval(months=4).pack()
                previous = self.start - timedelta(days=rng.randrange(0, 700))
                due = Interval.unpack(interval).after(previous)
                if num == 1:
                    due = NO_DAY  # Open Dental would fill it in; the connector computes it
                elif num == 2 or (num > 4 and rng.random() < 0.02):
                    previous = due = NO_DAY  # a new patient never seen for this recall
                yield (num, patient, due, due, previous, interval, 11 if rng.random() < 0.1 else 0,
                       int(num == 3 or rng.random() < 0.03), stamp(), kind, int(rng.random() < 0.02))
