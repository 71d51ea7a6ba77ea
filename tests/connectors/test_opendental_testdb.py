"""The Open Dental test-database generator, and the small pieces the connector is built from."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta

import MySQLdb
import pytest
from hypothesis import given, settings, strategies as st

from vitalsync.sync.normalize import e164
from vitalsync_connectors.opendental.database import connect, parse_url
from vitalsync_connectors.opendental.interval import Interval
from vitalsync_connectors.opendental.phones import phone
from vitalsync_connectors.opendental.testdb import cancel, create_schema, delete, fill, main, move, scratch_database, upcoming
from vitalsync_connectors.opendental.testpeople import BROKEN_PHONES, PHONE_FORMATS

START = date(2026, 3, 2)
#: column counts of Open Dental 24.2 (OpenDentalDocumentation.xml; reference/connectors.md §1.3)
COLUMNS = {"patient": 84, "appointment": 35, "provider": 46, "clinic": 42, "operatory": 14, "recall": 16,
           "recalltype": 6, "definition": 7, "appointmenttype": 10, "commoptout": 4, "histappointment": 40,
           "deletedobject": 4, "preference": 4}


@pytest.fixture
def small(server):
    """The smallest practice that still holds every edge case."""
    with scratch_database(f"{server}/vs_odgen") as (url, conn):
        create_schema(conn)
        fill(conn, patients=30, appointments=60, seed=2, start=START)
        yield conn


def rows(conn, sql: str, *args) -> list[tuple]:
    cursor = conn.cursor()
    cursor.execute(sql, args)
    return list(cursor.fetchall())


def values(conn, sql: str) -> set:
    return {row[0] for row in rows(conn, sql)}


def test_the_tables_have_open_dental_s_columns_all_not_null_in_innodb_utf8(small):
    (database,), = rows(small, "SELECT DATABASE()")
    columns = rows(small, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_KEY "
                          "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY ORDINAL_POSITION", database)
    counts = {}
    for table, *_ in columns:
        counts[table] = counts.get(table, 0) + 1
    assert counts == COLUMNS
    assert {row[3] for row in columns} == {"NO"}
    types = {(t, c): (kind, default, extra, key) for t, c, kind, _, default, extra, key in columns}
    assert types["appointment", "AptNum"] == ("bigint(20)", None, "auto_increment", "PRI")
    assert types["patient", "WirelessPhone"][0] == "varchar(30)" and types["appointment", "AptStatus"][0] == "tinyint(4)"
    assert types["patient", "Birthdate"][:2] == ("date", "'0001-01-01'")
    for table in ("appointment", "patient", "provider", "operatory", "recall", "deletedobject", "histappointment"):
        assert types[table, "DateTStamp"] == ("timestamp", "current_timestamp()", "on update current_timestamp()", "MUL"
                                              if table in ("appointment", "patient", "recall", "deletedobject",
                                                           "histappointment") else "")
    tables = rows(small, "SELECT ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", database)
    assert {engine for engine, _ in tables} == {"InnoDB"}
    assert {collation.replace("utf8mb3", "utf8") for _, collation in tables} == {"utf8_general_ci"}


def test_even_a_small_practice_holds_every_edge_case(small):
    assert values(small, "SELECT AptStatus FROM appointment") == {1, 2, 3, 4, 5, 6, 7, 8}
    assert values(small, "SELECT AptStatus FROM appointment WHERE AptDateTime = '0001-01-01'") >= {1, 3, 6}
    assert values(small, "SELECT PatStatus FROM patient") == {0, 1, 2, 3, 4, 5, 6}
    assert values(small, "SELECT TxtMsgOk FROM patient") == {0, 1, 2}
    assert {1, 4, 5, 8} <= values(small, "SELECT PreferContactMethod FROM patient")
    assert {1, 4, 5, 8} <= values(small, "SELECT PreferConfirmMethod FROM patient")
    assert values(small, "SELECT Language FROM patient") >= {"", "eng", "spa", "Vietnamese", "fra", "Tagalog"}
    phones = values(small, "SELECT WirelessPhone FROM patient")
    assert {"n/a", "none", "call mom", ""} <= phones and any(p.startswith(("+44", "+52")) for p in phones)
    assert any(";" in e or "," in e for e in values(small, "SELECT Email FROM patient"))
    assert rows(small, "SELECT PatNum FROM patient WHERE WirelessPhone = '' AND HmPhone <> ''")
    assert rows(small, "SELECT PatNum FROM patient WHERE Guarantor <> PatNum")
    assert rows(small, "SELECT PatNum FROM patient WHERE Birthdate = '0001-01-01'")
    assert rows(small, "SELECT PatNum FROM patient WHERE PatStatus = 5 AND DateTimeDeceased > '0001-01-01'")
    assert values(small, "SELECT OptOutSms FROM commoptout") >= {1, 2, 4, 8, 4096}
    assert values(small, "SELECT ClinicNum FROM appointment") == {0, 1, 2}
    assert values(small, "SELECT HistApptAction FROM histappointment") >= {0, 1, 2, 3, 4}
    assert values(small, "SELECT ObjectType FROM deletedobject") == {0}
    assert rows(small, "SELECT AptNum FROM appointment WHERE Pattern = ''")
    assert values(small, "SELECT RecallInterval FROM recall") >= {393216, 26 << 8}
    assert rows(small, "SELECT RecallNum FROM recall WHERE DateDue = '0001-01-01' AND DatePrevious > '0001-01-01'")
    deleted = values(small, "SELECT AptNum FROM histappointment WHERE HistApptAction = 4") | \
        values(small, "SELECT ObjectNum FROM deletedobject")
    assert deleted and not deleted & values(small, "SELECT AptNum FROM appointment")


def test_the_same_seed_gives_the_same_practice_and_another_seed_another(server):
    def practice(seed: int):
        with scratch_database(f"{server}/vs_odgen") as (_, conn):
            create_schema(conn)
            fill(conn, patients=40, appointments=120, seed=seed, start=START)
            return (rows(conn, "SELECT PatNum, LName, FName, WirelessPhone, Email, PatStatus, Guarantor FROM patient"),
                    rows(conn, "SELECT AptNum, PatNum, AptStatus, AptDateTime, Pattern FROM appointment"))

    first = practice(5)
    assert practice(5) == first and practice(6) != first
    assert len(first[0]) == 40 and len(first[1]) == 120


def test_a_load_that_fails_raises_the_server_s_error(server):
    with scratch_database(f"{server}/vs_odgen") as (_, conn):  # no tables
        with pytest.raises(MySQLdb.ProgrammingError, match="doesn't exist"):
            fill(conn, patients=10, appointments=10)


def test_fill_stamps_rows_an_hour_or_more_before_the_server_s_clock(small):
    (newest, now), = rows(small, "SELECT MAX(DateTStamp), NOW() FROM appointment")
    assert now - newest >= timedelta(hours=1)


def test_the_edits_are_made_as_open_dental_makes_them(small):
    broken, moved, deleted, legacy = upcoming(small, datetime.combine(START, datetime.min.time()))[:4]
    cancel(small, broken)
    (when,), = rows(small, "SELECT AptDateTime FROM appointment WHERE AptNum = %s", moved)
    move(small, moved, when + timedelta(days=2))
    delete(small, deleted)
    delete(small, legacy, legacy=True)
    fresh = rows(small, "SELECT AptNum, AptStatus, AptDateTime FROM appointment "
                        "WHERE DateTStamp >= NOW() - INTERVAL 1 MINUTE ORDER BY AptNum")
    assert fresh == sorted([(broken, 5, rows(small, "SELECT AptDateTime FROM appointment WHERE AptNum = %s", broken)[0][0]),
                            (moved, 1, when + timedelta(days=2))])
    history = rows(small, "SELECT AptNum, HistApptAction FROM histappointment WHERE DateTStamp >= NOW() - INTERVAL 1 MINUTE")
    assert sorted(history) == sorted([(broken, 3), (moved, 1), (deleted, 4)])
    assert rows(small, "SELECT ObjectNum, ObjectType FROM deletedobject WHERE DateTStamp >= NOW() - INTERVAL 1 MINUTE") \
        == [(legacy, 0)]
    assert not rows(small, "SELECT AptNum FROM appointment WHERE AptNum IN (%s, %s)", deleted, legacy)


def test_the_command_line_creates_the_database_and_fills_it(server, capsys):
    name = f"vs_odgen_cli_{uuid.uuid4().hex[:8]}"
    try:
        main(["--url", f"{server}/{name}", "--patients", "50", "--appointments", "150", "--seed", "3"])
        out = capsys.readouterr().out
        assert re.search(rf"^{name}: [\d,]+ rows in [\d.]+ s \([\d,]+ rows/s\)", out)
        assert re.search(r"appointment\s+150\b", out) and re.search(r"patient\s+50\b", out)
    finally:
        admin = connect(parse_url(f"{server}/mysql"), database=None, read_only=False)
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


# --- the pieces ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(area=st.integers(200, 999), exchange=st.integers(0, 999), line=st.integers(0, 9999),
       shape=st.sampled_from(PHONE_FORMATS + BROKEN_PHONES + ("+1{a}{e}{l}", "1{a}{e}{l}", " {a} {e} {l} ",
                                                              "{a}-{e}-{l} ext. 7", "({a}){e}-{l} ext 123",
                                                              "{a}.{e}.{l}x99999", "{a}{e}{l} X2")),
       region=st.sampled_from(["US", "CA", "GB", "MX"]), mobile=st.booleans())
def test_the_fast_phone_path_answers_exactly_as_phonenumbers_does(area, exchange, line, shape, region, mobile):
    raw = shape.format(a=area, e=f"{exchange:03d}", l=f"{line:04d}", l3=f"{line:04d}"[:3])
    assert phone(raw, region, mobile) == e164(raw, region, mobile_only=mobile)


def test_empty_and_foreign_phones():
    assert phone("", "US") is None
    assert phone("+44 20 7946 0958", "US") == "+442079460958" and phone("+44 20 7946 0958", "US", True) is None
    assert phone("020 7946 0958", "GB") == "+442079460958"


def test_packed_intervals_unpack_and_add_on_the_calendar():
    assert Interval(months=6).pack() == 393216 and Interval(months=3).pack() == 196608
    assert Interval.unpack(16777216) == Interval(years=1) and Interval.unpack(26 << 8 | 3) == Interval(weeks=26, days=3)
    assert Interval(months=1).after(date(2026, 1, 31)) == date(2026, 2, 28)
    assert Interval(months=6).after(date(2025, 9, 15)) == date(2026, 3, 15)
    assert Interval(years=1, weeks=1).after(date(2024, 2, 29)) == date(2025, 3, 7)
