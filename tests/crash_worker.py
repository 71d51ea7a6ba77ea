"""Dispatching processes for tests/test_crash.py, to be killed with SIGKILL at any moment.

    python tests/crash_worker.py CONFIG

A fork server: it imports everything once (about two seconds of a worker's start), then forks a new
dispatching process for each ``spawn`` line on its stdin. Each child builds the runtime from CONFIG
exactly as ``vitalsync dispatch`` does (its own database connections: the server opens none),
prints ``ready PID`` once it is about to dispatch, then dispatches continuously (as the daemon's
dispatch step does, batch after batch) until it is killed. When nothing is due it waits a little
and looks again, so that messages whose lease a killed predecessor still holds are taken as soon as
that lease expires. Children are separate processes, killed one by one by their pid; the server
reaps them (SIGCHLD ignored) and ends when its stdin closes.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import vitalsync.dispatch.sendgrid_email  # noqa: F401 - imported once here, not in every child
import vitalsync.dispatch.twilio_sms  # noqa: F401
import vitalsync.dispatch.twilio_voice  # noqa: F401
from vitalsync.app.runtime import build
from vitalsync.core.config import load_config
from vitalsync.core.log import setup


def dispatch_forever(config_path: str) -> None:
    config = load_config(config_path)
    setup(config.log.level, config.log.format)
    runtime = build(config)
    print(f"ready {os.getpid()}", flush=True)
    while True:
        if not runtime.dispatch_once().claimed:
            time.sleep(0.1)


def main(config_path: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # dead children are reaped at once: no zombies
    for line in sys.stdin:
        if line.strip() != "spawn":
            continue
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                dispatch_forever(config_path)
            finally:
                os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
