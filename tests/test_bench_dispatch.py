"""The dispatch benchmark's smoke run: every callback recorded once, every job completed, the rate
limit kept (its speed figures are not checked here; bench/README.md has those)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import _postgres_database

ROOT = Path(__file__).resolve().parent.parent


def test_the_dispatch_benchmark_smoke_run_loses_nothing():
    admin, name = _postgres_database()  # skips without PostgreSQL (fails in CI); the bench makes its own
    admin.execute(f'DROP DATABASE "{name}"')
    admin.close()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "dispatch" / "run.py"), "--smoke", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    hooks = results["webhooks"]
    assert hooks["messages_received"] == hooks["callbacks"] == hooks["answered_200"] and hooks["recorded_twice"] == 0
    assert results["queue"]["vitalsync_completed"] == [results["queue"]["count"]]
    assert results["rate_limit"]["measured_per_s"] <= results["rate_limit"]["configured_per_s"] * 1.02
