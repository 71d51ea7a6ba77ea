"""Dispatch benchmark: sends, queue, webhooks and rate limit, each against a reference measured in
the same run (the machines here are shared and noisy, so only side-by-side ratios mean much).

    python bench/dispatch/run.py            # the full run (a few minutes)
    python bench/dispatch/run.py --smoke    # a few seconds: small counts, no procrastinate

1. sends/s through the real twilio client (``TwilioSms``) to the fake Twilio, served by its own
   process on loopback, against a plain httpx POST loop to the same fake (the ceiling);
2. queue claim-and-complete on PostgreSQL: vitalsync's outbox (``claim`` + the in-flight mark and
   the outcome, as ``Dispatcher`` writes them) against procrastinate's worker on the same server
   (installed into ``bench/.procrastinate-venv`` on first use);
3. signed Twilio status callbacks ingested per second by the webhook receiver over real HTTP, on
   PostgreSQL, counted in the database afterwards (none lost, none twice);
4. the send rate measured against a configured per-sender rate limit.

Needs the project installed with the dev extras (``scripts/setup dev``) and PostgreSQL on
127.0.0.1:5432 (trust auth, user postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROCRASTINATE_VENV = HERE.parent / ".procrastinate-venv"
sys.path.insert(0, str(HERE))

import claims  # noqa: E402 - the bench's own modules, beside this file
import sends  # noqa: E402
import webhooks  # noqa: E402


def procrastinate_python() -> str:
    python = PROCRASTINATE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PROCRASTINATE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "procrastinate==3.*", "psycopg[binary,pool]"],
                       check=True)
    return str(python)


def procrastinate_drain(count: int) -> dict:
    with claims.postgres_database("vs_bench_procrastinate") as url:
        done = subprocess.run([procrastinate_python(), str(HERE / "procrastinate_step.py"),
                               url.replace("postgresql+psycopg://", "postgresql://"), str(count)],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=""))
    if done.returncode:
        raise SystemExit(f"procrastinate failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def queue(count: int, rounds: int, with_procrastinate: bool) -> dict:
    ours, theirs = [], []
    for _ in range(rounds):  # interleaved, each on a fresh database
        with claims.postgres_database("vs_bench_outbox") as url:
            ours.append(claims.vitalsync_drain(url, count, batch=100))
        if with_procrastinate:
            theirs.append(procrastinate_drain(count))
    result = {"vitalsync_per_s": statistics.median(r["per_s"] for r in ours),
              "vitalsync_completed": [r["completed"] for r in ours], "count": count}
    if theirs:
        result.update(procrastinate_per_s=statistics.median(r["per_s"] for r in theirs),
                      procrastinate_completed=[r["completed"] for r in theirs],
                      ratio=statistics.median(a["per_s"] / b["per_s"] for a, b in zip(ours, theirs)))
    return result


def webhooks_on_postgres(count: int, clients: int) -> dict:
    with claims.postgres_database("vs_bench_webhooks") as url:
        return webhooks.ingest(url, count, clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small counts, one round, no procrastinate")
    parser.add_argument("--sends", type=int, default=3000, help="texts per round of the sends comparison")
    parser.add_argument("--jobs", type=int, default=2000, help="messages / jobs per round of the queue comparison")
    parser.add_argument("--callbacks", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=64, help="concurrent connections posting callbacks")
    parser.add_argument("--rate", type=float, default=100.0, help="the configured rate limit, per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if args.smoke:
        args.sends, args.jobs, args.callbacks, args.rounds, args.rate = 200, 200, 300, 1, 50.0
    results = {
        "sends": sends.sends(args.sends, args.rounds),
        "queue": queue(args.jobs, args.rounds, with_procrastinate=not args.smoke),
        "webhooks": webhooks_on_postgres(args.callbacks, args.clients),
        "rate_limit": sends.rate_limit(args.rate, max(100, int(args.rate * (2 if args.smoke else 5)))),
        "load_average": os.getloadavg(),
    }
    report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    if not ok(results):
        raise SystemExit(1)


def ok(results: dict) -> bool:
    """Correctness (not speed): every callback recorded once, every job completed, the limit not exceeded
    (measured as sends return, so a little jitter is allowed above it; being slower is not a failure)."""
    hooks, limit = results["webhooks"], results["rate_limit"]
    return (hooks["lost"] == 0 and hooks["recorded_twice"] == 0 and hooks["answered_200"] == hooks["callbacks"]
            and all(done == results["queue"]["count"] for done in results["queue"]["vitalsync_completed"])
            and limit["measured_per_s"] <= limit["configured_per_s"] * 1.02)


def report(r: dict) -> None:
    s, q, w, limit = r["sends"], r["queue"], r["webhooks"], r["rate_limit"]
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in r['load_average'])} (2 cores)")
    print(f"sends, twilio client -> fake Twilio: {s['twilio_client_per_s']:,.0f}/s  (target >= 1,000/s)")
    print(f"sends, plain httpx POST loop (ceiling): {s['httpx_per_s']:,.0f}/s")
    print(f"  twilio client / ceiling (median of the rounds' ratios): {s['ratio']:.2f}  (target >= 0.50)")
    print(f"queue claim-and-complete, vitalsync outbox on PostgreSQL: {q['vitalsync_per_s']:,.0f}/s")
    if "procrastinate_per_s" in q:
        print(f"queue, procrastinate worker on the same server: {q['procrastinate_per_s']:,.0f}/s")
        print(f"  vitalsync / procrastinate (median of the rounds' ratios): {q['ratio']:.2f}x  (target >= 1)")
    print(f"signed status callbacks ingested: {w['per_s']:,.0f}/s over {w['clients']} connections  (target >= 1,500/s); "
          f"{w['callbacks']:,} posted, {w['answered_200']:,} answered 200, {w['messages_received']:,} recorded, "
          f"{w['lost']} lost, {w['recorded_twice']} twice")
    off = limit["measured_per_s"] / limit["configured_per_s"] - 1
    print(f"rate limit {limit['configured_per_s']:g}/s: measured {limit['measured_per_s']:.2f}/s over {limit['count']} sends "
          f"({off:+.1%}; target within 5%), at most {limit['most_in_any_second']} in any one second")


if __name__ == "__main__":
    main()
