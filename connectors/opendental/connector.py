"""The Open Dental connector: reads its MariaDB/MySQL database directly, read-only.

Patients, appointments and recalls stream from the server (``Rows``): the mirror consumes them
a chunk at a time. An incremental read takes the rows whose DateTStamp lies
in ``[cursor - overlap, server now)``: server time, because DateTStamp is set by the server's
clock; an overlap, because a transaction may commit after a read that its DateTStamp precedes.
Rows in the overlap come again, and the mirror's upsert makes that harmless. Clinics, chairs,
types and opt-outs have no timestamp: they are small and read whole every time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import MySQLdb

from vitalsync.core.config import Config
from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.core.secrets import read_secret
from vitalsync.sync.connector import AppointmentRecord, Batch, PatientRecord, RecallRecord
from vitalsync_connectors.opendental import queries as q
from vitalsync_connectors.opendental.database import Rows, Target, connect, failure, parse_url
from vitalsync_connectors.opendental.mapping import Practice, opt_outs, providers
from vitalsync_connectors.opendental.options import OpenDentalOptions

CURSOR = "%Y-%m-%d %H:%M:%S"  #: the server's local time of the read


class OpenDentalConnector:
    """Open Dental's database, read with SELECT only, in a read-only session."""

    name = "opendental"
    Options = OpenDentalOptions

    def __init__(self, url: str, *, password: str = "", timezone: str = "America/New_York", region: str = "US",
                 overlap_seconds: int = 5, practice_name: str | None = None, api=None,
                 answers: dict[str, str | int] | None = None) -> None:
        self.target: Target = parse_url(url, password)
        self.timezone, self.region, self.practice_name = timezone, region, practice_name
        self.overlap = timedelta(seconds=overlap_seconds)
        self.api = api  #: a ConfirmApi when write-back is on
        #: answer -> what it sets in Open Dental: a confirmVal, or an ApptConfirmed DefNum (an int)
        self.answers = answers or {"confirmed": "Confirmed", "declined": "Not Accepted"}

    @classmethod
    def from_config(cls, options: OpenDentalOptions, config: Config) -> OpenDentalConnector:
        password = read_secret("opendental_password", options.password_file, key="connector.password_file",
                               config_path=config.path, required=False) or ""
        api = None
        if options.write_back:
            from vitalsync_connectors.opendental.api import ConfirmApi

            key = read_secret("opendental_api_key", options.api_key_file, key="connector.api_key_file",
                              config_path=config.path, required=True)
            api = ConfirmApi(options.api_url, key)
        return cls(options.url, password=password, timezone=options.timezone or config.schedule.timezone,
                   region=options.default_region, overlap_seconds=options.overlap_seconds,
                   practice_name=config.clinic.name, api=api,
                   answers={"confirmed": options.write_confirmed, "declined": options.write_declined})

    def read(self, since: str | None, now: datetime) -> Batch:
        """Everything when ``since`` is None (or not a cursor of this connector), else the changes."""
        start = _cursor(since)
        conn = connect(self.target)
        try:
            cursor = conn.cursor()
            practice = self._practice(cursor)
            cursor.execute("SELECT NOW()")
            server_now = cursor.fetchone()[0]
            window = None if start is None else (start - self.overlap, server_now)
            return self._batch(cursor, practice, server_now, window)
        except MySQLdb.Error as exc:
            raise failure(exc, self.target) from None
        finally:
            conn.close()

    def check(self) -> str:
        conn = connect(self.target)
        try:
            cursor = conn.cursor()
            self._practice(cursor)
            for sql in (q.PROVIDERS, q.PATIENTS, q.APPOINTMENTS, q.RECALLS, q.GONE):
                cursor.execute(f"{sql} LIMIT 0", (None,) * sql.count("%s"))
            cursor.execute("SELECT (SELECT ValueString FROM preference WHERE PrefName = 'DataBaseVersion'), "
                           "(SELECT COUNT(*) FROM patient), (SELECT COUNT(*) FROM appointment)")
            version, patients, appointments = cursor.fetchone()
            cursor.execute("SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_read_only', 'transaction_read_only')")
            read_only = any(value in ("ON", "1") for _, value in cursor.fetchall())
        except MySQLdb.Error as exc:
            raise failure(exc, self.target) from None
        finally:
            conn.close()
        return (f"Open Dental {version or '(version unknown)'} at {self.target}: {patients:,} patients, "
                f"{appointments:,} appointments ({'read-only session' if read_only else 'WRITABLE session'})")

    def confirm(self, key: str, value: str = "Confirmed", *, def_num: int | None = None) -> None:
        """Mark the appointment confirmed in Open Dental through its REST API (write-back must be on)."""
        if self.api is None:
            raise PersonMustAct("write-back to Open Dental is off: set connector.write_back = true and the "
                                "secret 'opendental_api_key'")
        conn = connect(self.target)
        try:
            self._practice(conn.cursor())  # waits (RetryLater) while Open Dental is being updated
        except MySQLdb.Error as exc:
            raise failure(exc, self.target) from None
        finally:
            conn.close()
        self.api.confirm(key, value, def_num=def_num)

    def write_answer(self, appointment_key: str, answer: str) -> None:
        """Write a patient's answer (``confirmed`` / ``declined``) as the mapped confirmation (``WritesBack``)."""
        value = self.answers[answer]
        if isinstance(value, int):
            self.confirm(appointment_key, def_num=value)
        else:
            self.confirm(appointment_key, value)

    def _practice(self, cursor) -> Practice:
        cursor.execute(q.PREFERENCES)
        prefs = dict(cursor.fetchall())
        if prefs.get("UpdateInProgressOnComputerName", "").strip():
            raise RetryLater(f"Open Dental database {self.target} is being updated (UpdateInProgressOnComputerName "
                             "is set); reading waits until the update is done")
        name = self.practice_name or prefs.get("PracticeTitle") or "Main office"
        practice = Practice(self.timezone, self.region, name,
                            unknown_is_no=prefs.get("TextMsgOkStatusTreatAsNo", "0").strip() in ("1", "true", "True"))
        cursor.execute(q.CLINICS)
        practice.add_clinics(cursor.fetchall())
        for sql, lookup in ((q.OPERATORIES, "op_clinic"), (q.APPOINTMENT_TYPES, "types"),
                            (q.RECALL_TYPES, "recall_types")):
            cursor.execute(sql)
            rows = cursor.fetchall()  # types by key as text, as the streamed SELECTs give them
            setattr(practice, lookup, dict(rows) if lookup == "op_clinic" else {str(k): v for k, v in rows})
        return practice

    def _batch(self, cursor, practice: Practice, server_now: datetime, window: tuple | None) -> Batch:
        """Everything (``window`` None), or the rows stamped inside ``window``. Patients, appointments
        and recalls stream: an incremental read after Open Dental rewrote every row (an upgrade
        does) is as large as a full one."""
        args = window or ()

        def select(sql: str) -> str:
            return q.where(sql, q.WINDOW) if window else sql

        cursor.execute(select(q.PROVIDERS), args)
        batch = Batch(complete=window is None, cursor=server_now.strftime(CURSOR), locations=practice.locations,
                      providers=providers(cursor.fetchall()), opt_outs=self._opt_outs(cursor))
        # damaged appointments are named in batch.rejected as the stream passes them
        streamed = {"patients": (q.PATIENTS, practice.patients, PatientRecord, q.PATIENTS),
                    "appointments": (q.APPOINTMENTS, partial(practice.appointments, rejected=batch.rejected),
                                     AppointmentRecord, q.DATED_APPOINTMENTS),
                    "recalls": (q.RECALLS, practice.recalls, RecallRecord, q.RECALLS)}
        sizes = {} if window else self._table_sizes(cursor)
        for name, (sql, mapper, record, counted) in streamed.items():
            cursor.execute(f"{select(sql)} LIMIT 0", args)  # a missing table or grant shows now, not mid-sync
            setattr(batch, name, Rows(self.target, select(sql), args, mapper, record, q.count(select(counted)),
                                      rejected=batch.rejected, estimated_rows=sizes.get(name.rstrip("s"), 0)))
        if window:
            cursor.execute(q.GONE, window * 3)
            batch.deleted_appointments = list(dict.fromkeys(str(num) for (num,) in cursor.fetchall()))
        return batch

    def _table_sizes(self, cursor) -> dict[str, int]:
        """InnoDB's estimate of each table's rows (instant, within a few tens of percent): a full
        read's streams carry it, so the mirror knows which are worth a process of their own."""
        cursor.execute("SELECT LOWER(TABLE_NAME), TABLE_ROWS FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('patient', 'appointment', 'recall')")
        return {table: rows or 0 for table, rows in cursor.fetchall()}

    def _opt_outs(self, cursor):
        cursor.execute(q.OPT_OUTS)
        return opt_outs(cursor.fetchall())


def _cursor(since: str | None) -> datetime | None:
    try:
        return datetime.strptime(since, CURSOR) if since else None
    except ValueError:
        return None  # another connector's cursor: a full read is always safe
