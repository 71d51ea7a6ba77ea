"""Sync benchmark: an Open Dental database in MariaDB synced into SQLite and PostgreSQL mirrors,
measured side by side with (a) a plain read of the same rows and columns with mysqlclient and
PyMySQL (the ceiling; and, for reference, mysqlclient reading the connector's own SELECTs) and (b) the dlt library's sql_database source loading the same tables and
columns into SQLite (what a user might pick instead). Every step runs in its own process, so each
peak memory figure is that step's alone.

    python bench/sync/run.py                       # 100,000 patients, 500,000 appointments
    python bench/sync/run.py --patients 2000 --appointments 10000   # a smoke run

Needs the project installed with the dev extras; dlt is installed into bench/.dlt-venv on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DLT_VENV = HERE.parent / ".dlt-venv"
PATIENT_COLUMNS = ["PatNum", "FName", "Preferred", "LName", "PatStatus", "WirelessPhone", "HmPhone", "WkPhone",
                   "Email", "TxtMsgOk", "PreferConfirmMethod", "PreferContactMethod", "Language", "Guarantor"]
RECALL_COLUMNS = ["RecallNum", "PatNum", "DateDue", "DatePrevious", "RecallInterval", "IsDisabled", "RecallTypeNum"]
APPOINTMENT_COLUMNS = ["AptNum", "PatNum", "AptStatus", "AptDateTime", "Pattern", "ProvNum", "ProvHyg", "IsHygiene",
                       "ClinicNum", "Op", "AppointmentTypeNum"]


def peak_mb() -> float:
    """This process's peak plus its largest child's (the sync's reader process, when it has one):
    the sum of the two peaks, so never less than the peak of both together."""
    return sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (a reader process):
    steadier than the wall clock on a shared machine."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def mysql_target(url: str):
    from vitalsync_connectors.opendental.database import parse_url
    return parse_url(url)


def plain_selects() -> list[str]:
    """The ceiling's SELECTs: the columns the connector maps, as stored, of the rows it syncs (patients,
    appointments of statuses 1-5 with a date, recalls); no expression, cast or join."""
    from vitalsync_connectors.opendental import queries
    return [f"SELECT {', '.join(PATIENT_COLUMNS)} FROM patient",
            f"SELECT {', '.join(APPOINTMENT_COLUMNS)} FROM appointment WHERE AptStatus IN (1, 2, 3, 4, 5) "
            f"AND AptDateTime >= {queries.NO_DATE}",
            f"SELECT {', '.join(RECALL_COLUMNS)} FROM recall"]


def step_raw(args) -> dict:
    """Read the rows and columns with a bare driver and count them: the ceiling. ``--queries
    connector`` reads the connector's own SELECTs instead (they move some work into the server)."""
    from vitalsync_connectors.opendental import queries
    target = mysql_target(args.url)
    if args.driver == "mysqlclient":
        import MySQLdb
        import MySQLdb.cursors
        conn = MySQLdb.connect(host=target.host, port=target.port, user=target.user, passwd=target.password,
                               db=target.database, cursorclass=MySQLdb.cursors.SSCursor, charset="utf8mb4")
    else:
        import pymysql
        conn = pymysql.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                               database=target.database, cursorclass=pymysql.cursors.SSCursor, charset="utf8mb4")
    selects = ([queries.PATIENTS, queries.DATED_APPOINTMENTS, queries.RECALLS] if args.queries == "connector"
               else plain_selects())
    rows, started, cpu = 0, time.perf_counter(), cpu_seconds()
    for sql in selects:
        cursor = conn.cursor()
        cursor.execute(sql)
        while chunk := cursor.fetchmany(5000):
            rows += len(chunk)
        cursor.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_mb": peak_mb(),
            "cpu_s": cpu_seconds() - cpu}


def _runtime(args, database_url: str):
    from vitalsync.app.runtime import build_connector, open_database
    from vitalsync.core.config import load_config
    home = Path(args.home)
    path = home / f"config-{args.target}.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[connector]\ntype = "opendental"\nurl = "{args.url}"\n'
                    f'timezone = "America/New_York"\n[sync]\nmax_removed_share = 1.0\n', encoding="utf-8")
    config = load_config(path)
    return open_database(config), build_connector(config)


def step_vitalsync(args) -> dict:
    """A full sync into an empty mirror, then (with --incremental) one after 0.1% of rows changed."""
    from vitalsync.core.clock import SystemClock
    from vitalsync.mirror.refresh import refresh_once
    from vitalsync.sync.guard import RemovalGuard
    engine, connector = _runtime(args, args.database)
    guard = RemovalGuard(max_share=1.0)
    started, cpu = time.perf_counter(), cpu_seconds()
    run = refresh_once(engine, connector, SystemClock(), full=True, guard=guard)
    seconds = time.perf_counter() - started
    result = {"rows": run.rows_read, "seconds": seconds, "rows_per_s": run.rows_read / seconds, "peak_mb": peak_mb(),
              "cpu_s": cpu_seconds() - cpu}
    if args.incremental:
        changed = change_a_tenth_of_a_percent(args)
        time.sleep(1.1)  # DateTStamp has one-second resolution
        started = time.perf_counter()
        again = refresh_once(engine, connector, SystemClock(), guard=guard)
        result["incremental"] = {"changed_in_source": changed, "rows": again.rows_read, "changed": again.changed,
                                 "seconds": time.perf_counter() - started}
    return result


def step_sqlite_floor(args) -> dict:
    """SQLite alone: ready-made text rows of the appointments inserted into an empty mirror the way the
    sync does (executemany in chunks, indexes built after, one commit): what no Python can go below."""
    from datetime import datetime, timedelta
    from vitalsync.mirror.tables import Appointment
    engine, _ = _runtime(args, args.database)
    table = Appointment.__table__
    base, now = datetime(2026, 1, 5, 8), datetime.now().isoformat(" ", "microseconds")
    rows = []
    for number in range(1, args.appointments + 1):
        start = base + timedelta(minutes=15 * (number % 30_000))
        rows.append((str(number), str(number % args.patients + 1), "1", "3", "Cleaning", "scheduled",
                     start.isoformat(" ", "microseconds"), (start + timedelta(minutes=30)).isoformat(" ", "microseconds"),
                     1, None, now, now))
    columns = ", ".join(f'"{column.name}"' for column in table.columns)
    sql = f"INSERT INTO appointment ({columns}) VALUES ({', '.join('?' * len(table.columns))})"
    started, cpu = time.perf_counter(), cpu_seconds()
    with engine.begin() as conn:
        conn.exec_driver_sql("BEGIN")  # pysqlite would not open it before the DROP INDEX
        for index in table.indexes:
            index.drop(conn)
        cursor = conn.connection.dbapi_connection.cursor()
        for first in range(0, len(rows), 2000):
            cursor.executemany(sql, rows[first:first + 2000])
        for index in table.indexes:
            index.create(conn)
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "seconds": seconds, "rows_per_s": len(rows) / seconds, "peak_mb": peak_mb(),
            "cpu_s": cpu_seconds() - cpu}


def change_a_tenth_of_a_percent(args) -> int:
    """Move 0.1% of appointments by a day and give 0.1% of patients a new mobile number."""
    import MySQLdb
    target = mysql_target(args.url)
    conn = MySQLdb.connect(host=target.host, port=target.port, user=target.user, passwd=target.password, db=target.database)
    cursor = conn.cursor()
    appointments = max(1, args.appointments // 1000)
    patients = max(1, args.patients // 1000)
    cursor.execute("UPDATE appointment SET AptDateTime = AptDateTime + INTERVAL 1 DAY WHERE AptStatus = 1 "
                   "ORDER BY AptNum DESC LIMIT %s", (appointments,))
    # a number that differs from the last run's, so a --reuse run changes these patients too
    cursor.execute("UPDATE patient SET WirelessPhone = CONCAT('(212) 555-', LPAD(MOD(PatNum + %s, 10000), 4, '0')) "
                   "ORDER BY PatNum DESC LIMIT %s", (int(time.time()) % 9973, patients))
    conn.commit()
    return appointments + patients


def step_dlt(args) -> dict:
    """dlt's sql_database source: the same tables and columns into SQLite (its default backend)."""
    import dlt
    from dlt.sources.sql_database import sql_table
    credentials = args.url.replace("mysql://", "mysql+mysqldb://", 1)  # this venv has dlt, not vitalsync
    tables = [sql_table(credentials, table="patient", included_columns=PATIENT_COLUMNS),
              sql_table(credentials, table="appointment", included_columns=APPOINTMENT_COLUMNS),
              sql_table(credentials, table="recall", included_columns=RECALL_COLUMNS)]
    pipeline = dlt.pipeline(pipeline_name="bench", pipelines_dir=str(Path(args.home) / "dlt"),
                            destination=dlt.destinations.sqlalchemy(f"sqlite:///{Path(args.home) / 'dlt.db'}"),
                            dataset_name="main")
    started, cpu = time.perf_counter(), cpu_seconds()
    pipeline.run(tables)
    seconds = time.perf_counter() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows = counts.get("patient", 0) + counts.get("appointment", 0) + counts.get("recall", 0)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_mb": peak_mb(),
            "cpu_s": cpu_seconds() - cpu}


STEPS = {"raw": step_raw, "vitalsync": step_vitalsync, "dlt": step_dlt, "sqlite_floor": step_sqlite_floor}


def run_step(python: str, *argv: str) -> dict:
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", PYTHONPATH=str(ROOT))
    done = subprocess.run([python, __file__, "--step", *argv], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"step {argv[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dlt_python() -> str:
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "dlt[sqlalchemy]==1.*", "mysqlclient", "pymysql"], check=True)
    return str(python)


def postgres_database(name: str) -> str:
    import psycopg
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/vs_bench_od")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--appointments", type=int, default=500_000)
    parser.add_argument("--reuse", action="store_true", help="use the Open Dental database as it is (no regeneration)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-dlt", action="store_true")
    parser.add_argument("--step", choices=STEPS)
    parser.add_argument("--driver", default="mysqlclient")
    parser.add_argument("--queries", default="plain", choices=("plain", "connector"))
    parser.add_argument("--database")
    parser.add_argument("--target", default="sqlite")
    parser.add_argument("--home")
    parser.add_argument("--incremental", action="store_true")
    args, _ = parser.parse_known_args()
    if args.step:
        print(json.dumps(STEPS[args.step](args)))
        return
    home = Path(tempfile.mkdtemp(prefix="vitalsync-bench-"))
    common = ["--url", args.url, "--patients", str(args.patients), "--appointments", str(args.appointments), "--home", str(home)]
    if not args.reuse:
        subprocess.run([sys.executable, "-m", "vitalsync_connectors.opendental.testdb", "--url", args.url,
                        "--patients", str(args.patients), "--appointments", str(args.appointments), "--seed", "1"], check=True)
        print()
    # one unmeasured read first: MariaDB's buffer pool is cold after a (re)generation or a restart, and
    # the first measured step would pay for it (a 15 s raw read once made the sync look 1.7x the ceiling)
    run_step(sys.executable, "raw", *common, "--driver", "mysqlclient")
    results = {
        "raw_mysqlclient": run_step(sys.executable, "raw", *common, "--driver", "mysqlclient"),
        "raw_pymysql": run_step(sys.executable, "raw", *common, "--driver", "pymysql"),
        "raw_connector_sql": run_step(sys.executable, "raw", *common, "--queries", "connector"),
        "vitalsync_sqlite": run_step(sys.executable, "vitalsync", *common, "--database", f"sqlite:///{home / 'mirror.db'}",
                                     "--incremental"),
    }
    results["sqlite_floor"] = run_step(sys.executable, "sqlite_floor", *common, "--target", "floor",
                                       "--database", f"sqlite:///{home / 'floor.db'}")
    if not args.no_postgres:
        results["vitalsync_postgres"] = run_step(sys.executable, "vitalsync", *common, "--target", "postgres",
                                                 "--database", postgres_database("vitalsync_bench"))
    if not args.no_dlt:
        results["dlt_sqlite"] = run_step(dlt_python(), "dlt", *common)
    report(results)


def report(results: dict) -> None:
    print(f"{'run':20} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8} {'CPU s':>6}")
    for name, r in results.items():
        print(f"{name:20} {r['rows']:>9,} {r['seconds']:>8.2f} {r['rows_per_s']:>9,.0f} {r['peak_mb']:>8.0f}"
              f" {r['cpu_s']:>6.2f}")
    ours = results["vitalsync_sqlite"]
    print(f"\nfull sync into SQLite / raw mysqlclient read: {ours['rows_per_s'] / results['raw_mysqlclient']['rows_per_s']:.2f}"
          "  (target >= 0.33, moonshot 0.5)")
    if "dlt_sqlite" in results:
        print(f"full sync into SQLite / dlt sql_database into SQLite: {ours['rows_per_s'] / results['dlt_sqlite']['rows_per_s']:.1f}x"
              "  (target >= 4)")
    if "sqlite_floor" in results:
        print(f"SQLite alone, {results['sqlite_floor']['rows']:,} ready-made appointment rows: "
              f"{results['sqlite_floor']['seconds']:.2f} s (the raw read of all three tables: "
              f"{results['raw_mysqlclient']['seconds']:.2f} s)")
    inc = ours["incremental"]
    print(f"incremental sync after {inc['changed_in_source']:,} changed rows: {inc['seconds']:.2f} s, "
          f"{inc['rows']:,} rows read, {inc['changed']:,} changed  (target < 2 s)")
    print(f"peak memory of the full sync: {ours['peak_mb']:.0f} MB  (target < 300 MB)")


if __name__ == "__main__":
    main()
