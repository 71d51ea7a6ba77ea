"""procrastinate's side of the queue benchmark; runs in bench/.procrastinate-venv (no vitalsync there).

    python procrastinate_step.py CONNINFO COUNT  → one JSON line

No-op jobs are deferred in one batch (not timed), then one worker (concurrency 1, as vitalsync's
single dispatcher loop) runs until the queue is empty (``wait=False``): fetch, run, finish per job.
"""

from __future__ import annotations

import json
import sys
import time

import procrastinate
import psycopg


def main(conninfo: str, count: int) -> None:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop", queue="bench")
    def noop(i: int) -> None:
        return None

    with app.open():
        app.schema_manager.apply_schema()
        for start in range(0, count, 5000):
            noop.batch_defer(*({"i": i} for i in range(start, min(count, start + 5000))))
        started = time.perf_counter()
        app.run_worker(queues=["bench"], wait=False, concurrency=1, install_signal_handlers=False,
                       listen_notify=False, delete_jobs="never")
        seconds = time.perf_counter() - started
    with psycopg.connect(conninfo) as conn:
        done = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()[0]
    print(json.dumps({"jobs": count, "completed": done, "seconds": seconds, "per_s": done / seconds}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
