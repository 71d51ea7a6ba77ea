"""The command line end to end, on one demo home: the demo, the log, the report, why, the queue,
check, --help; the logs carry no patient data; `run` stops cleanly on SIGTERM.

The demo runs once for the module (about 15 s). Tests that change the database work on a copy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue as queues
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

# A fixed start makes the demo deterministic (its clock is virtual; its practice follows seed and
# start). Which statuses a short demo reaches depends on the weekdays it covers: from a Saturday no
# message is still 'sent' (no send window on Sunday), and 'skipped' (e.g. no allowed send time left
# before the appointment) needs the right appointments; two days from Thursday 26 November 2026 show
# every status.
DAYS, SEED, START = 2, 3, "2026-11-26"
STATUSES = {"not_sent", "sent", "received", "not_received", "confirmed", "declined", "cancelled", "skipped", "failed"}
LOG_FIELDS = {"id", "kind", "channel", "address", "language", "status", "patient", "appointments", "answers", "send_at", "sent_at", "status_at",
              "attempts", "reason", "history"}
SUBCOMMANDS = ["demo", "run", "sync", "plan", "dispatch", "log", "report", "why", "queue", "send", "check", "config",
               "user"]
ENV = {k: v for k, v in os.environ.items()
       if k not in ("VITALSYNC_CONFIG", "VITALSYNC_DATABASE_PASSWORD", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET",
                    "WATCHDOG_USEC", "WATCHDOG_PID")}


def vitalsync(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vitalsync", *args], capture_output=True, text=True,
                          encoding="utf-8", cwd=cwd, env=ENV, timeout=timeout, stdin=subprocess.DEVNULL)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def as_json(proc: subprocess.CompletedProcess[str]):
    return json.loads(ok(proc).stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    proc = vitalsync("demo", "--home", str(home), "--days", str(DAYS), "--seed", str(SEED), "--start", START,
                     cwd=home.parent, timeout=300)
    return home, proc


@pytest.fixture(scope="module")
def config(demo) -> str:
    ok(demo[1])  # a failed demo fails every test that reads it, with the demo's own output
    return str(demo[0] / "config.toml")


@pytest.fixture(scope="module")
def log_rows(config) -> list[dict]:
    return as_json(vitalsync("log", "--config", config, "--format", "json"))


@pytest.fixture
def home_copy(demo, tmp_path) -> Path:
    """A copy of the demo home for tests that change the database."""
    copy = tmp_path / "home"
    shutil.copytree(demo[0], copy)
    return copy


# --- the demo and what it shows -------------------------------------------------------------


def test_demo_prints_the_summary_and_what_to_do_next(demo):
    home, proc = demo
    ok(proc)
    assert f"simulated for {DAYS} days from {START} (seed {SEED})" in proc.stdout
    assert re.search(r"^KIND\s+PLANNED\s+SENT\s+RECEIVED", proc.stdout, re.MULTILINE), proc.stdout
    assert "appointment_reminder" in proc.stdout
    assert "Next:" in proc.stdout
    assert str(home / "config.toml") in proc.stdout
    assert (home / "config.toml").is_file() and (home / "vitalsync.db").is_file()


def test_demo_shows_a_recall_that_catches_up(demo):
    """The demo's first planning finds recalls due within two weeks, whose send time had passed: they
    go at the next allowed time (issue 11, point 9), and the summary shows them."""
    home, proc = demo
    ok(proc)
    assert re.search(r"^Catch-up: \d+ recalls were first planned after their send time", proc.stdout, re.MULTILINE), proc.stdout
    sent = re.findall(r"^  recall \d+ due (\S+): \w+ sent (\S+ \S+) E[SD]T", proc.stdout, re.MULTILINE)
    assert sent, proc.stdout
    due, at = sent[0]
    assert at.startswith(START) and due > START  # sent on the first day, before it was due


def test_no_address_gets_two_messages_of_one_kind_at_the_same_time(demo):
    """The property behind issue 11, point 10, over the whole demo practice (families sharing a phone
    or an email, catch-up sends on the first morning): every message that was or will be sent has
    its own (address, kind, send time); and none of a capped kind shares its day with another text."""
    home, proc = demo
    ok(proc)
    with sqlite3.connect(home / "vitalsync.db") as db:
        live = "status NOT IN ('cancelled', 'skipped')"
        same = db.execute(f"SELECT address, kind, send_at, COUNT(*) FROM message WHERE {live} "
                          "GROUP BY address, kind, send_at HAVING COUNT(*) > 1").fetchall()
        assert db.execute(f"SELECT COUNT(*) FROM message WHERE {live}").fetchone()[0] > 500
        capped = db.execute(f"""SELECT a.id, b.id FROM message a JOIN message b ON a.address = b.address AND a.id != b.id
            WHERE a.kind IN ('recall', 'product_pickup') AND a.channel IN ('sms', 'voice') AND b.channel IN ('sms', 'voice')
              AND a.status NOT IN ('cancelled', 'skipped') AND b.status NOT IN ('cancelled', 'skipped')
              -- the same day in New York (EST in late November)
              AND date(COALESCE(a.sent_at, a.send_at), '-5 hours') = date(COALESCE(b.sent_at, b.send_at), '-5 hours')
        """).fetchall()
    assert same == []
    assert capped == []


def test_log_shows_every_lifecycle_status_across_kinds(log_rows):
    assert isinstance(log_rows, list) and log_rows
    statuses = Counter(row["status"] for row in log_rows)
    assert STATUSES <= set(statuses), f"missing {STATUSES - set(statuses)}; got {dict(statuses)}"
    assert len({row["kind"] for row in log_rows}) >= 5


def test_log_rows_have_the_documented_fields(log_rows):
    for row in log_rows:
        assert set(row) == LOG_FIELDS, row
        assert isinstance(row["appointments"], list) and isinstance(row["history"], list) and row["history"]
        assert isinstance(row["attempts"], int)
        for event in row["history"]:
            assert set(event) == {"at", "status", "source", "detail"}, event
        assert row["history"][0]["status"] == "not_sent"
        assert row["history"][-1]["status"] == row["status"], row


def test_report_counts_confirmed_and_declined_per_kind(config, log_rows):
    report = as_json(vitalsync("report", "--config", config, "--format", "json"))
    by_kind = {row["kind"]: row for row in report}
    assert set(by_kind) == {row["kind"] for row in log_rows}
    counts = Counter((row["kind"], row["status"]) for row in log_rows)
    for kind, row in by_kind.items():
        for field in ("sent", "received", "confirmed", "declined", "received_rate", "confirm_rate", "decline_rate"):
            assert field in row, (kind, field)
        assert row["confirmed"] == counts[kind, "confirmed"]
        assert row["declined"] == counts[kind, "declined"]
        if row["sent"]:
            assert row["confirm_rate"] == pytest.approx(row["confirmed"] / row["sent"], abs=1e-4)
            assert row["decline_rate"] == pytest.approx(row["declined"] / row["sent"], abs=1e-4)
        else:
            assert row["confirm_rate"] is None
    assert by_kind["appointment_reminder"]["confirmed"] > 0 and by_kind["appointment_reminder"]["declined"] > 0


def test_log_as_csv_has_a_header_row(config, log_rows):
    rows = list(csv.reader(io.StringIO(ok(vitalsync("log", "--config", config, "--format", "csv")).stdout)))
    assert rows[0] == ["id", "kind", "channel", "address", "language", "status", "patient", "appointments", "send_at", "reason"]
    assert len(rows) == len(log_rows) + 1
    assert [int(r[0]) for r in rows[1:]] == [row["id"] for row in log_rows]


def test_log_filters_by_kind_and_status(config, log_rows):
    rows = as_json(vitalsync("log", "--config", config, "--kind", "appointment_reminder", "--status", "confirmed",
                             "--format", "json"))
    assert rows
    assert all(r["kind"] == "appointment_reminder" and r["status"] == "confirmed" for r in rows)
    expected = [r["id"] for r in log_rows if r["kind"] == "appointment_reminder" and r["status"] == "confirmed"]
    assert [r["id"] for r in rows] == expected


def test_why_explains_a_cancelled_or_moved_appointment(config, log_rows):
    pattern = re.compile(r"appointment (cancelled|moved)")
    message = next(r for r in log_rows if r["status"] == "cancelled" and pattern.search(r["reason"] or ""))
    key = message["appointments"][0]
    [trace] = as_json(vitalsync("why", "--config", config, "--appointment", key, "--format", "json"))
    assert trace["appointment"] == key
    assert trace["decisions"], trace
    for decision in trace["decisions"]:
        assert {"at", "kind", "decision", "reason", "channel", "message"} <= set(decision)
    # the decision that ended the message: "cancelled" (cancelled in the PMS) or "moved" (planned again)
    assert any(d["decision"] in ("cancelled", "moved") and d["message"] == message["id"]
               for d in trace["decisions"]), trace
    assert message["id"] in [m["id"] for m in trace["messages"]]


def test_queue_lists_only_pending_messages(config, log_rows):
    rows = as_json(vitalsync("queue", "--config", config, "--format", "json"))
    assert rows and {r["status"] for r in rows} == {"not_sent"}
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in log_rows if r["status"] == "not_sent")


def test_queue_cancel_by_kind(home_copy):
    config = str(home_copy / "config.toml")
    before = as_json(vitalsync("queue", "--config", config, "--kind", "after_appointment", "--format", "json"))
    assert before
    others = as_json(vitalsync("queue", "--config", config, "--format", "json"))
    refused = vitalsync("queue", "--config", config, "--cancel", "--kind", "after_appointment")
    assert refused.returncode == 1 and "--yes" in refused.stderr  # not a terminal: never acts without --yes
    done = ok(vitalsync("queue", "--config", config, "--cancel", "--kind", "after_appointment", "--yes"))
    assert f"cancel: {len(before)} messages" in done.stdout
    assert as_json(vitalsync("queue", "--config", config, "--kind", "after_appointment", "--format", "json")) == []
    left = as_json(vitalsync("queue", "--config", config, "--format", "json"))
    assert len(left) == len(others) - len(before)
    cancelled = {r["id"]: r for r in as_json(vitalsync("log", "--config", config, "--kind", "after_appointment",
                                                      "--status", "cancelled", "--format", "json"))}
    for row in before:
        assert cancelled[row["id"]]["history"][-1]["source"] == "staff"


def test_check_prints_ok_for_every_part(config):
    proc = ok(vitalsync("check", "--config", config))
    for part in ("config", "database", "connector", "message kinds", "templates"):
        assert re.search(rf"^OK\s+{part}:", proc.stdout, re.MULTILINE), f"{part}:\n{proc.stdout}"
    assert "FAIL" not in proc.stdout


def test_sync_prints_its_report_and_check_shows_the_last_one(home_copy):
    config = str(home_copy / "config.toml")
    report = ok(vitalsync("sync", "--full", "--config", config)).stdout
    assert re.search(r"^MODE\s+OUTCOME\s+ROWS_READ\s+CHANGED\s+REMOVED\s+REJECTED\s+SECONDS$", report, re.MULTILINE), report
    assert re.search(r"^full\s+ok\s+[1-9]\d*\s", report, re.MULTILINE), report
    check = ok(vitalsync("check", "--config", config)).stdout
    assert re.search(r"^OK\s+last sync: full ok at .*: [1-9][\d,]* rows read", check, re.MULTILINE), check


def test_the_demo_front_desk_sends_the_office_closed_notice_to_a_day_once(config, log_rows):
    closed = [row for row in log_rows if row["kind"] == "office_closed"]
    assert len(closed) >= 5, "the demo's group send queued too few messages"
    assert {row["history"][0]["detail"] for row in closed} == {"group send 1 started by demo"}
    assert sum(row["status"] in ("sent", "received", "not_received") for row in closed) >= len(closed) // 2
    why = as_json(vitalsync("why", "--config", config, "--appointment", closed[0]["appointments"][0], "--format", "json"))
    assert any(d["kind"] == "office_closed" and d["reason"].startswith("group send 1: ") for d in why[0]["decisions"])


def _rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_send_dry_run_writes_nothing_and_a_send_needs_yes_off_a_terminal(home_copy):
    config, db = str(home_copy / "config.toml"), home_copy / "vitalsync.db"
    before = [_rows(db, table) for table in ("message", "decision", "group_send")]
    day = ("--kind", "office_closed", "--date", "2026-11-30", "--config", config)
    dry = ok(vitalsync("send", *day, "--dry-run")).stdout
    assert re.match(r"kind=office_closed date=2026-11-30: \d+ appointments\n", dry), dry
    assert dry.rstrip().endswith("dry run: nothing queued")
    asked = vitalsync("send", *day, "--location", "1")
    assert asked.returncode in (0, 1) and [_rows(db, t) for t in ("message", "decision", "group_send")] == before
    bad = vitalsync("send", "--kind", "office_closed", "--date", "30/11/2026", "--config", config)
    assert bad.returncode == 2 and "is not a date: write YYYY-MM-DD" in bad.stderr
    wrong = vitalsync("send", "--kind", "recall", "--date", "2026-11-30", "--config", config)
    assert wrong.returncode == 1 and "a group send needs a manual kind (office_closed)" in wrong.stderr


def test_help_lists_every_subcommand():
    proc = ok(vitalsync("--help"))
    listed = re.findall(r"^    (\w+)\s", proc.stdout, re.MULTILINE)
    assert sorted(listed) == sorted(SUBCOMMANDS), proc.stdout


# --- logs carry no patient data ---------------------------------------------------------------


def _patients(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT first_name, last_name, mobile, landline, email FROM patient").fetchall()


def _phone_forms(number: str) -> list[str]:
    """How a stored number (+13105238156) might be written: as stored, bare digits, (310) 523-8156, 310-523-8156."""
    digits = re.sub(r"\D", "", number)
    national = digits[-10:]
    forms = [number, digits]
    if len(national) == 10:
        a, b, c = national[:3], national[3:6], national[6:]
        forms += [national, f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}"]
    return forms


def test_logs_carry_no_patient_data(demo, home_copy):
    config = str(home_copy / "config.toml")
    logs = demo[1].stderr
    for command in (["run", "--once"], ["sync"], ["sync", "--full"], ["plan"], ["dispatch"]):
        logs += ok(vitalsync(*command, "--config", config)).stderr

    lines = [line for line in logs.splitlines() if line.strip()]
    assert any('"sync_done"' in line for line in lines), logs
    decoded = []
    for line in lines:
        event = json.loads(line)  # not a terminal: JSON lines
        assert isinstance(event, dict) and "event" in event, line
        decoded.append(json.dumps(event, ensure_ascii=False))
    text = logs + "\n" + "\n".join(decoded)

    patients = _patients(home_copy / "vitalsync.db")
    assert len(patients) >= 10
    leaks = set()
    for first, last, mobile, landline, email in patients:
        for name in (first, last):
            if name and len(name) >= 4 and re.search(rf"\b{re.escape(name)}\b", text):
                leaks.add(name)
        for number in (mobile, landline):
            if number and any(form in text for form in _phone_forms(number)):
                leaks.add(number)
        if email and (email in text or email.split("@")[0] in text):
            leaks.add(email)
    assert not leaks, f"patient data in the logs: {sorted(leaks)[:20]}"


# --- the daemon -------------------------------------------------------------------------------


def _lines(stream, into: queues.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put(None)


def _wait_for(lines: queues.Queue, event: str, seen: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queues.Empty:
            return False
        if line is None:
            return False
        seen.append(line)
        if f'"{event}"' in line:
            return True
    return False


def test_run_exits_cleanly_on_sigterm(home_copy):
    process = subprocess.Popen([sys.executable, "-m", "vitalsync", "run", "--config", str(home_copy / "config.toml")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, encoding="utf-8", env=ENV)
    lines: queues.Queue = queues.Queue()
    reader = threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        assert _wait_for(lines, "daemon_started", seen, 30), "".join(seen)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    while not lines.empty():
        if (line := lines.get_nowait()) is not None:
            seen.append(line)
    output = "".join(seen)
    assert "daemon_stopped" in output, output
    assert "Traceback" not in output, output
