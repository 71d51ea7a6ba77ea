"""One of several ``vitalsync run``-like processes for tests/test_scale.py, sharing one PostgreSQL queue.

    python tests/scale_worker.py CONFIG RECORD [--sync-seconds S]

Builds the runtime from CONFIG as ``vitalsync run`` does, prints ``ready``, then, as the daemon's
scheduler does, dispatches continuously in the main thread while another thread keeps trying to
sync and reconcile (``Runtime.sync_once`` / ``reconcile_once``, each under its job lease). Every
sync and reconciliation pass that actually runs appends ``{"pid", "job", "start", "end"}`` to RECORD
(one JSON line, written with O_APPEND); every skipped turn appends ``{"pid", "job", "skipped": true}``.
The passes are stretched by ``--sync-seconds`` so that, without the leases, two processes' passes
would overlap. It runs until killed.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import vitalsync.app.runtime as runtime_module
from vitalsync.app.runtime import build
from vitalsync.core.config import load_config
from vitalsync.core.log import setup


def record(path: str, entry: dict) -> None:
    line = (json.dumps({"pid": os.getpid(), **entry}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def recorded(job: str, step, path: str, stretch: float):
    """``step`` as run under the lease, noting when it started and ended."""
    def run(*args, **kwargs):
        start = time.time()
        try:
            result = step(*args, **kwargs)
            time.sleep(stretch)
            return result
        finally:
            record(path, {"job": job, "start": start, "end": time.time()})
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("record")
    parser.add_argument("--sync-seconds", type=float, default=0.2)
    parser.add_argument("--sync-only", action="store_true", help="only sync (the takeover test)")
    args = parser.parse_args()
    config = load_config(args.config)
    setup(config.log.level, config.log.format)
    runtime_module.refresh_once = recorded("sync", runtime_module.refresh_once, args.record, args.sync_seconds)
    runtime_module.reconcile_once = recorded("reconcile", runtime_module.reconcile_once, args.record, args.sync_seconds)
    runtime = build(config)

    def jobs() -> None:
        while True:
            for job, step in (("sync", runtime.sync_once), ("reconcile", runtime.reconcile_once)):
                if step() is None:
                    record(args.record, {"job": job, "skipped": True})
                time.sleep(0.3)  # a real sync reads the whole demo practice: leave the CPU to dispatch

    print("ready", flush=True)
    if args.sync_only:
        while True:
            if runtime.sync_once() is None:
                time.sleep(0.05)
    threading.Thread(target=jobs, daemon=True, name="jobs").start()
    while True:
        if not runtime.dispatch_once().claimed:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
