"""The demo connector: reads the synthetic practice as it stands at ``now``.

The practice is generated once per instance; a read replays the front-desk changes made up to
``now``. An incremental read returns only the rows changed in ``(since, now]``.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from vitalsync.core.config import Config
from vitalsync.core.errors import PersonMustAct
from vitalsync.sync.connector import AppointmentRecord, Batch, PatientRecord, PickupRecord
from vitalsync_connectors.demo.options import DemoOptions
from vitalsync_connectors.demo.practice import Change, Practice, build


class DemoConnector:
    """A deterministic synthetic practice: the same arguments always give the same rows."""

    name = "demo"
    Options = DemoOptions

    def __init__(self, *, seed: int = 7, start: date, patients: int = 400, weeks: int = 6) -> None:
        self.seed, self.start, self.patients, self.weeks = seed, start, patients, weeks

    @classmethod
    def from_config(cls, options: DemoOptions, config: Config) -> DemoConnector:
        """From ``[connector] type = "demo"``; an empty start means today in the clinic's zone."""
        start = options.start or datetime.now(ZoneInfo(config.schedule.timezone)).date()
        return cls(seed=options.seed, start=start, patients=options.patients, weeks=options.weeks)

    @cached_property
    def practice(self) -> Practice:
        return build(self.seed, self.start, self.patients, self.weeks)

    @cached_property
    def _change_times(self) -> list[datetime]:
        return [c.at for c in self.practice.changes]

    def read(self, since: str | None, now: datetime) -> Batch:
        if now.tzinfo is None:
            raise ValueError("the demo connector needs a time-zone aware now")
        upto = bisect_right(self._change_times, now)
        appointments, pickups, patients = self._state(self.practice.changes[:upto])
        if since is None:
            p = self.practice
            return Batch(complete=True, cursor=now.isoformat(), locations=list(p.locations),
                         providers=list(p.providers), patients=list(patients.values()),
                         appointments=list(appointments.values()), recalls=list(p.recalls),
                         pickups=list(pickups.values()), opt_outs=list(p.opt_outs))
        window = self.practice.changes[bisect_right(self._change_times, _cursor(since)):upto]
        batch = Batch(complete=False, cursor=now.isoformat())
        # dicts keep the first-changed order and drop repeats
        changed = {type(c.record): {} for c in window}
        for c in window:
            changed[type(c.record)][c.record.key] = c
        for key, c in changed.get(AppointmentRecord, {}).items():
            if key in appointments:
                batch.appointments.append(appointments[key])
            elif c.deleted:
                batch.deleted_appointments.append(key)
        batch.pickups = [pickups[k] for k in changed.get(PickupRecord, {})]
        batch.patients = [patients[k] for k in changed.get(PatientRecord, {})]
        return batch

    def check(self) -> str:
        p = self.practice
        return (f"demo practice: {len(p.locations)} locations, {len(p.patients):,} patients, "
                f"{len(p.appointments):,} appointments")

    def _state(self, changes: list[Change]):
        p = self.practice
        appointments = {a.key: a for a in p.appointments}
        pickups = {u.key: u for u in p.pickups}
        patients = {r.key: r for r in p.patients}
        for c in changes:
            if c.deleted:
                appointments.pop(c.record.key, None)
            else:
                {AppointmentRecord: appointments, PickupRecord: pickups,
                 PatientRecord: patients}[type(c.record)][c.record.key] = c.record
        return appointments, pickups, patients


def _cursor(since: str) -> datetime:
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise PersonMustAct(f"the demo cursor {since!r} is not a time-zone aware ISO time")
    return when
