"""Console benchmark: the message log and the Today page with 50,000 messages on SQLite.

Fills a fresh SQLite database with a realistic practice (5,000 patients, 20,000 appointments over
the last 100 and the next 20 days at two locations with six providers) and 50,000 messages with
their targets, status histories (about 2.5 events each) and 3,000 replies; then serves the real
console ASGI app with uvicorn on loopback and times pages over HTTP, logged in as a front-desk
user: median and 90th percentile of N requests each, after one warm-up request.

    .venv/bin/python bench/console/run.py                 # 50,000 messages, 30 requests per page
    .venv/bin/python bench/console/run.py --messages 5000 --requests 5    # a smoke run
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert

from vitalsync.app.console_server import start_console
from vitalsync.app.runtime import open_database
from vitalsync.console import accounts
from vitalsync.core.clock import SystemClock
from vitalsync.core.config import STOCK_KINDS, load_config
from vitalsync.mirror.tables import Appointment, Location, Patient, Provider
from vitalsync.queue.tables import Message, MessageEvent, MessageTarget
from vitalsync.status.tables import Reply

ZONE = ZoneInfo("America/New_York")
TARGET_MS = 300
PASSWORD = "benchmark password"
FINAL = [("confirmed", 30), ("declined", 6), ("received", 30), ("not_received", 8), ("cancelled", 8), ("skipped", 5),
         ("failed", 1), ("sent", 2)]


def fill(engine, messages: int, seed: int, now: datetime) -> dict:
    rng = random.Random(seed)
    patients, appointments = max(100, messages // 10), max(400, messages * 2 // 5)
    rows = {"location": [{"key": k, "name": n, "timezone": "America/New_York", "phone": ""}
                         for k, n in (("main", "Main Street"), ("up", "Uptown"))],
            "provider": [{"key": f"p{i}", "name": f"Dr. Provider {i}", "location_key": "main" if i < 3 else "up"} for i in range(6)],
            "patient": [{"key": str(10_000 + i), "first_name": f"First{i}", "last_name": f"Last{i}", "mobile": f"+1212{i:07d}",
                         "email": f"p{i}@example.com", "sms_ok": True, "email_ok": True, "voice_ok": True, "language": "en",
                         "active": True, "updated_at": now} for i in range(patients)]}
    today = datetime.combine(now.astimezone(ZONE).date(), datetime.min.time(), ZONE)
    appts = []
    for i in range(appointments):
        day = today + timedelta(days=rng.randint(-100, 19))
        start = day + timedelta(hours=rng.randint(8, 17), minutes=rng.choice((0, 15, 30, 45)))
        provider = rng.randrange(6)
        status = "scheduled" if start > now else rng.choice(("completed", "completed", "completed", "no_show", "cancelled"))
        appts.append({"key": f"a{i}", "patient_key": str(10_000 + rng.randrange(patients)), "location_key": "main" if provider < 3 else "up",
                      "provider_key": f"p{provider}", "type": "Hygiene", "status": status, "start": start,
                      "end": start + timedelta(minutes=45), "version": 1, "first_seen_at": now, "changed_at": now})
    rows["appointment"] = appts
    statuses, weights = zip(*FINAL)
    msgs, targets, events, replies = [], [], [], []
    for i in range(1, messages + 1):
        appt = appts[rng.randrange(appointments)]
        kind = rng.choice(STOCK_KINDS[:5])
        send_at = appt["start"] - timedelta(days=rng.choice((1, 2, 3)), hours=rng.randint(0, 5))
        status = "not_sent" if send_at > now else rng.choices(statuses, weights)[0]
        channel = rng.choice(("sms", "sms", "sms", "email", "voice"))
        msgs.append({"id": i, "key": f"k{i}", "kind": kind, "channel": channel, "address": f"+1212{i:07d}",
                     "patient_key": appt["patient_key"], "appointment_key": appt["key"], "language": "en", "asks_reply": True,
                     "send_at": send_at, "deadline": appt["start"], "status": status, "status_at": min(now, send_at + timedelta(hours=1)),
                     "reason": "", "attempts": 0 if status == "not_sent" else 1, "in_flight": False, "created_at": send_at - timedelta(days=2),
                     "sent_at": None if status in ("not_sent", "skipped", "cancelled") else send_at})
        targets.append({"message_id": i, "position": 0, "appointment_key": appt["key"], "patient_key": appt["patient_key"],
                        "appointment_version": 1})
        path = ["not_sent"] + ([] if status == "not_sent" else ["sent"] if status not in ("skipped", "cancelled") else [])
        path += [status] if status not in path else []
        for step, s in enumerate(path):
            events.append({"message_id": i, "at": send_at - timedelta(days=2) + timedelta(minutes=step * 30), "status": s,
                           "source": "bench", "detail": ""})
        if status in ("confirmed", "declined") or (status == "received" and rng.random() < 0.1):
            intent = {"confirmed": "confirm", "declined": "decline"}.get(status, rng.choice(("unknown", "reschedule")))
            replies.append({"at": send_at + timedelta(hours=1), "channel": channel, "address": f"+1212{i:07d}",
                            "body": "C" if intent == "confirm" else "N" if intent == "decline" else "can we talk?",
                            "intent": intent, "message_id": i, "patient_key": appt["patient_key"],
                            "needs_staff": intent != "confirm", "answer": ""})
    rows.update(message=msgs, message_target=targets, message_event=events, reply=replies[:3000])
    tables = {"location": Location, "provider": Provider, "patient": Patient, "appointment": Appointment, "message": Message,
              "message_target": MessageTarget, "message_event": MessageEvent, "reply": Reply}
    with engine.begin() as connection:
        for name, model in tables.items():
            for chunk in range(0, len(rows[name]), 5000):
                connection.execute(insert(model.__table__), rows[name][chunk:chunk + 5000])
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return {name: len(value) for name, value in rows.items()}


def timed(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    client.get(path).raise_for_status()  # warm-up: templates compiled, pages cached by SQLite
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1 if len(times) >= 10 else -1], len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vitalsync-bench-console-"))
    (home / "console.key").write_text("k" * 64)
    (home / "config.toml").write_text('[database]\nurl = "sqlite:///vitalsync.db"\n[console]\nsecret_key_file = "console.key"\n'
                                      "secure_cookies = false  # plain HTTP on loopback\n")
    config = load_config(home / "config.toml")
    engine = open_database(config)
    now = datetime.now(timezone.utc)
    began = time.perf_counter()
    counts = fill(engine, args.messages, args.seed, now)
    print(f"filled {home / 'vitalsync.db'} in {time.perf_counter() - began:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    accounts.add_user(engine, "desk", "front_desk", PASSWORD, now)
    served = start_console(config, engine, SystemClock(), listen="127.0.0.1:0", force=True)
    try:
        with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
            assert client.post("/login", data={"csrf": token, "name": "desk", "password": PASSWORD}).status_code == 303
            patient = re.search(r'href="/patient/([^"]+)"', client.get("/log").text).group(1)
            pages = [("message log, first page", "/log", True), ("message log, status=confirmed", "/log?status=confirmed", True),
                     ("message log, page 500", "/log?page=500", True),
                     ("message log, one patient", f"/log?patient={patient}", True), ("today", "/today", True),
                     ("report (last 30 days)", "/report", False), ("needs attention", "/attention", False),
                     ("queue", "/queue", False), ("patient", f"/patient/{patient}", False)]
            print(f"\n{'page':34} {'median ms':>10} {'p90 ms':>8} {'KB':>6}  target")
            for label, path, targeted in pages:
                median, p90, size = timed(client, path, args.requests)
                verdict = ("met" if median < TARGET_MS else "NOT met") if targeted else ""
                print(f"{label:34} {median:10.1f} {p90:8.1f} {size / 1024:6.0f}  {f'< {TARGET_MS} ms ' + verdict if targeted else ''}")
    finally:
        served.stop()
        engine.dispose()


if __name__ == "__main__":
    main()
