"""The generic ODBC connector: a PMS's vendor views (Dentrix, Eaglesoft) read through one query per entity.

Incremental reads compare fingerprints instead of trusting a change stamp. Vendor views rarely
carry a stamp that covers every column reminders depend on, and none of them records deletions.
So every read runs every query. A full read returns all rows. An incremental read returns only
the rows whose cleaned record differs from the previous read's, and the appointments missing since
then as ``deleted_appointments``. Other vanished rows (a patient, a recall) wait for the next full
read. The fingerprints live in memory and belong to the cursor of the last read. Any other cursor
(a new process, or a sync that was held and never applied) gets a full read with
``complete=True``: that costs one bigger write and never misses a change.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError
from vitalsync.core.secrets import read_secret
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import Batch, LocationRecord
from vitalsync.sync.tabular import mapping_problems, timezone_problems
from vitalsync_connectors.odbc import source
from vitalsync_connectors.odbc.mapping import DEFAULT_LOCATION, FIELDS, Mapper, positions
from vitalsync_connectors.odbc.options import OdbcOptions
from vitalsync_connectors.odbc.values import Unusable

ENTITIES = tuple(FIELDS)  # in reading order: patients before the rows that name them
NAMES_A_PATIENT = ("appointments", "recalls", "pickups")
LOGIN_TIMEOUT = 15  # seconds


@dataclass
class Snapshot:
    """Everything the queries returned this time, cleaned."""

    records: dict[str, list] = field(default_factory=lambda: {entity: [] for entity in ENTITIES})
    rejected: list[str] = field(default_factory=list)
    #: the keys of rejected rows, when readable
    held: dict[str, set[str]] = field(default_factory=lambda: {entity: set() for entity in ENTITIES})

    def fingerprints(self) -> dict[str, dict[str, int]]:
        return {entity: {record.key: hash(record) for record in records} for entity, records in self.records.items()}


class OdbcConnector:
    """Any PMS readable over ODBC; read-only: it runs only the SELECTs it is given."""

    name = "odbc"
    Options = OdbcOptions

    def __init__(self, connection_string: str, *, queries: dict[str, str], timezone: str,
                 columns: dict[str, dict[str, str]] | None = None,
                 statuses: dict[str, AppointmentStatus | str] | None = None, region: str = "US",
                 password: str | None = None, location_name: str = "Main office") -> None:
        self.queries = {entity: sql for entity, sql in queries.items() if sql and sql.strip()}
        self.columns = {entity: dict(mapping) for entity, mapping in (columns or {}).items()}
        _validate(connection_string, self.queries, self.columns, timezone)
        self.connection_string = connection_string
        self.password, self.location_name, self.zone = password, location_name, ZoneInfo(timezone)
        self.mapper = Mapper(zone=self.zone, region=region,
                             statuses={name: AppointmentStatus(value) for name, value in (statuses or {}).items()})
        self._token, self._reads = secrets.token_hex(6), 0
        self._last: tuple[str, dict[str, dict[str, int]]] | None = None  # (cursor, fingerprints)

    @classmethod
    def from_config(cls, options: OdbcOptions, config: Config) -> OdbcConnector:
        """From ``[connector] type = "odbc"``; the password from the secret 'odbc_password', when there is one."""
        password = read_secret("odbc_password", options.password_file, key="connector.password_file",
                               config_path=config.path, required=False)
        try:
            return cls(options.connection_string, queries=options.queries, columns=options.columns,
                       statuses=options.statuses, timezone=options.timezone or config.schedule.timezone,
                       region=options.default_region, password=password, location_name=config.clinic.name)
        except ConfigError as exc:
            raise ConfigError([f"{config.path}: {problem}" for problem in exc.problems]) from None

    def read(self, since: str | None, now: datetime) -> Batch:
        snapshot = self._snapshot()
        previous = self._last[1] if self._last and since is not None and since == self._last[0] else None
        self._reads += 1
        cursor, fingerprints = f"odbc:{self._token}:{self._reads}", snapshot.fingerprints()
        if previous is None:
            batch = Batch(complete=True, cursor=cursor, rejected=snapshot.rejected,
                          unreadable_appointments=sorted(snapshot.held["appointments"]),
                          unreadable_patients=sorted(snapshot.held["patients"]), **snapshot.records)
        else:
            batch = _changes(snapshot, previous, fingerprints)
            batch.cursor = cursor
        self._last = (cursor, fingerprints)
        return batch

    def check(self) -> str:
        """The database behind the connection string, after running each query and finding its columns."""
        connection = self._connect()
        try:
            for entity, sql in self.queries.items():
                names, cursor = source.execute(connection, entity, sql)
                source.close(cursor)
                positions(entity, names, self.columns.get(entity, {}))
            return f"ODBC {source.describe(connection)}: the {', '.join(self.queries)} queries return their columns"
        finally:
            source.close(connection)

    def _connect(self):
        return source.connect(source.with_password(self.connection_string, self.password), login_timeout=LOGIN_TIMEOUT)

    def _snapshot(self) -> Snapshot:
        snapshot = Snapshot()
        connection = self._connect()
        try:
            for entity in ENTITIES:
                if entity in self.queries:
                    self._read(connection, entity, snapshot)
        finally:
            source.close(connection)
        located = {record.key for record in snapshot.records["locations"]}
        if DEFAULT_LOCATION not in located and any(
                record.location_key == DEFAULT_LOCATION for entity in ("appointments", "pickups")
                for record in snapshot.records[entity]):
            snapshot.records["locations"].append(LocationRecord(DEFAULT_LOCATION, self.location_name, self.zone.key))
        return snapshot

    def _read(self, connection, entity: str, snapshot: Snapshot) -> None:
        names, cursor = source.execute(connection, entity, self.queries[entity])
        at = positions(entity, names, self.columns.get(entity, {}))
        patients = {record.key for record in snapshot.records["patients"]} | snapshot.held["patients"]
        records, first_row = snapshot.records[entity], {}
        for number, row in enumerate(source.fetch(cursor, entity), start=1):
            try:
                record = self.mapper.record(entity, row, at)
                if record.key in first_row:
                    raise Unusable("key", f"the same as row {first_row[record.key]}'s")
                if entity in NAMES_A_PATIENT and record.patient_key not in patients:
                    raise Unusable("patient_key", "not among the patients query's rows")
            except Unusable as why:
                snapshot.rejected.append(f"{entity} row {number}: {why}")
                if (key := self.mapper.key(row, at)) is not None and key not in first_row:
                    snapshot.held[entity].add(key)
                continue
            first_row[record.key] = number
            records.append(record)


def _changes(snapshot: Snapshot, previous: dict, fingerprints: dict) -> Batch:
    """The rows whose fingerprint differs from the previous read's, and the appointments gone since."""
    for entity, keys in snapshot.held.items():
        # a row that could not be read this time is neither changed nor gone
        fingerprints[entity].update((key, previous[entity][key]) for key in keys
                                    if key in previous[entity] and key not in fingerprints[entity])
    batch = Batch(complete=False, rejected=snapshot.rejected)
    for entity, records in snapshot.records.items():
        was, now = previous[entity], fingerprints[entity]
        setattr(batch, entity, [record for record in records if was.get(record.key) != now[record.key]])
    batch.deleted_appointments = [key for key in previous["appointments"] if key not in fingerprints["appointments"]]
    return batch


def _validate(connection_string: str, queries: dict[str, str], columns: dict[str, dict[str, str]],
              timezone: str) -> None:
    problems = []
    if source.PASSWORD_KEY.search(connection_string):
        problems.append("connector.connection_string: holds a password; move it to connector.password_file, "
                        "$VITALSYNC_ODBC_PASSWORD or the credential 'odbc_password'")
    problems += [f"connector.queries: the {entity} query is required" for entity in ("patients", "appointments")
                 if entity not in queries]
    problems += [f"connector.queries.{entity}: not an entity (use {', '.join(ENTITIES)})" for entity in queries
                 if entity not in FIELDS]
    problems += mapping_problems(columns, FIELDS)
    problems += timezone_problems(timezone)
    if problems:
        raise ConfigError(problems)
