"""A dispatching process for tests/test_crash.py, to be killed with SIGKILL at any moment.

    python tests/crash_worker.py CONFIG

Builds the runtime from CONFIG exactly as ``vitalsync dispatch`` does, prints ``ready`` once it is
about to dispatch, then dispatches continuously (as the daemon's dispatch step does, batch after
batch) until it is killed. When nothing is due it waits a little and looks again, so that messages
whose lease a killed predecessor still holds are taken as soon as that lease expires.
"""

from __future__ import annotations

import sys
import time

from vitalsync.app.runtime import build
from vitalsync.core.config import load_config
from vitalsync.core.log import setup


def main(config_path: str) -> None:
    config = load_config(config_path)
    setup(config.log.level, config.log.format)
    runtime = build(config)
    print("ready", flush=True)
    while True:
        if not runtime.dispatch_once().claimed:
            time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
