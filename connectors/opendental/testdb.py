"""The Open Dental test database: schema, seeded filler, and the edits the front desk makes.

    python -m vitalsync_connectors.opendental.testdb --url mysql://root@127.0.0.1:3306/od_bench \\
        --patients 100000 --appointments 500000 --seed 1

``create_schema`` (re)creates Open Dental's tables from ``schema.sql``; ``fill`` adds a practice;
``cancel``, ``move`` and ``delete`` change it as Open Dental does (DateTStamp moves by itself).
Every DateTStamp written by ``fill`` lies at least an hour before the server's clock, so an
incremental read right after sees only what a test changes.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib.resources import files

from vitalsync_connectors.opendental.database import connect, parse_url
from vitalsync_connectors.opendental.testload import Loader
from vitalsync_connectors.opendental.testpeople import PATIENT_COLUMNS, People
from vitalsync_connectors.opendental.testreference import REFERENCE
from vitalsync_connectors.opendental.testvisits import (APPOINTMENT_COLUMNS, DELETED_COLUMNS, HISTORY_COLUMNS,
                                                       RECALL_COLUMNS, Visits)

#: appointment's columns copied into histappointment as Open Dental does (its DateTStamp is its own)
APPOINTMENT_ALL = (
    "AptNum, PatNum, AptStatus, Pattern, Confirmed, TimeLocked, Op, Note, ProvNum, ProvHyg, AptDateTime, NextAptNum, "
    "UnschedStatus, IsNewPatient, ProcDescript, Assistant, ClinicNum, IsHygiene, DateTimeArrived, "
    "DateTimeSeated, DateTimeDismissed, InsPlan1, InsPlan2, DateTimeAskedToArrive, ProcsColored, ColorOverride, "
    "AppointmentTypeNum, SecUserNumEntry, SecDateTEntry, Priority, ProvBarText, PatternSecondary, SecurityHash, "
    "ItemOrderPlanned")
COLUMNS = {"appointment": APPOINTMENT_COLUMNS, "histappointment": HISTORY_COLUMNS, "deletedobject": DELETED_COLUMNS}


@dataclass
class Filled:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def create_schema(conn) -> None:
    """Drop and create Open Dental's tables (appointment, patient, ... preference) in the current database."""
    ddl = files("vitalsync_connectors.opendental").joinpath("schema.sql").read_text(encoding="utf-8")
    cursor = conn.cursor()
    for statement in ddl.split(";\n"):
        sql = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        if sql.strip():
            cursor.execute(sql)
    conn.commit()


def fill(conn, *, patients: int = 400, appointments: int = 2000, seed: int = 7, start: date | None = None) -> Filled:
    """Add a practice: reference rows, ``patients`` patients in families, ``appointments`` appointments."""
    began = time.perf_counter()
    start = start or date.today()
    rng = random.Random(seed)
    cursor = conn.cursor()
    cursor.execute("SELECT NOW()")
    now = cursor.fetchone()[0]

    def stamp() -> datetime:
        return now - timedelta(seconds=rng.randrange(3600, 180 * 86400))

    loader = Loader(conn)
    try:
        for table, (columns, rows) in REFERENCE.items():
            loader.add_all(table, columns, rows)
        people = People(rng, start, patients)
        loader.add_all("patient", PATIENT_COLUMNS, people.rows(stamp))
        loader.add_all("commoptout", ("PatNum", "OptOutSms", "OptOutEmail"), people.opt_outs())
        visits = Visits(rng, start, people)
        for table, row in visits.rows(appointments, stamp):
            loader.add(table, COLUMNS[table], row)
        loader.add_all("recall", RECALL_COLUMNS, visits.recalls(stamp))
    except BaseException:
        loader.abort()
        raise
    return Filled(loader.close(), time.perf_counter() - began)


@contextmanager
def scratch_database(url: str = "mysql://root@127.0.0.1:3306/vs_od", *, password: str = ""):
    """A new database named after the URL's (plus a random suffix) for the block; dropped after.

    Yields ``(url, conn)``: the new database's URL and a writable connection to it.
    """
    target = parse_url(url, password)
    name = f"{target.database}_{uuid.uuid4().hex[:8]}"
    admin = connect(target, database=None, read_only=False)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8")
        conn = connect(target, database=name, read_only=False)
        conn.autocommit(False)
        try:
            yield url.rsplit("/", 1)[0] + f"/{name}", conn
        finally:
            conn.close()
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()


def upcoming(conn, after: datetime, *, limit: int = 50) -> list[int]:
    """AptNums of Scheduled appointments after ``after`` (practice-local), soonest first."""
    cursor = conn.cursor()
    cursor.execute("SELECT AptNum FROM appointment WHERE AptStatus = 1 AND AptDateTime > %s "
                   "ORDER BY AptDateTime, AptNum LIMIT %s", (after, limit))
    return [row[0] for row in cursor.fetchall()]


def _history(cursor, apt_num: int, action: int) -> None:
    cursor.execute(f"INSERT INTO histappointment (HistUserNum, HistDateTStamp, HistApptAction, ApptSource, "
                   f"{APPOINTMENT_ALL}) SELECT 1, NOW(), %s, 0, {APPOINTMENT_ALL} FROM appointment WHERE AptNum = %s",
                   (action, apt_num))


def cancel(conn, apt_num: int, *, unscheduled: bool = False) -> None:
    """Break the appointment (AptStatus 5), or send it to the unscheduled list (3); history action 3."""
    cursor = conn.cursor()
    cursor.execute("UPDATE appointment SET AptStatus = %s WHERE AptNum = %s", (3 if unscheduled else 5, apt_num))
    _history(cursor, apt_num, 3)
    conn.commit()


def move(conn, apt_num: int, to: datetime) -> None:
    """Reschedule the appointment to ``to`` (practice-local); history action 1 (Changed)."""
    cursor = conn.cursor()
    cursor.execute("UPDATE appointment SET AptDateTime = %s WHERE AptNum = %s", (to, apt_num))
    _history(cursor, apt_num, 1)
    conn.commit()


def delete(conn, apt_num: int, *, legacy: bool = False) -> None:
    """Delete the appointment as Open Dental 21+ does (history action 4), or as old versions did
    (a deletedobject row of ObjectType 0) when ``legacy``."""
    cursor = conn.cursor()
    if legacy:
        cursor.execute("INSERT INTO deletedobject (ObjectNum, ObjectType) VALUES (%s, 0)", (apt_num,))
    else:
        _history(cursor, apt_num, 4)
    cursor.execute("DELETE FROM appointment WHERE AptNum = %s", (apt_num,))
    conn.commit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vitalsync_connectors.opendental.testdb",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="mysql://user@host:port/database (created when missing)")
    parser.add_argument("--password", default=os.environ.get("VITALSYNC_OPENDENTAL_PASSWORD", ""),
                        help="the user's password (default: $VITALSYNC_OPENDENTAL_PASSWORD)")
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--appointments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=None, help="the practice's today (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    target = parse_url(args.url, args.password)
    server = connect(target, database=None, read_only=False)
    server.autocommit(False)
    server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{target.database}` CHARACTER SET utf8")
    server.select_db(target.database)
    create_schema(server)
    filled = fill(server, patients=args.patients, appointments=args.appointments, seed=args.seed, start=args.start)
    total = sum(filled.rows.values())
    print(f"{target.database}: {total:,} rows in {filled.seconds:.1f} s ({total / filled.seconds:,.0f} rows/s)")
    for table, count in filled.rows.items():
        print(f"  {table:16} {count:>9,}")


if __name__ == "__main__":
    main()
