"""Full sync into SQLite, two checkouts side by side: A/B on a noisy machine.

    python bench/sync/ab.py 6 /work/wt-base /work/wt-sync   # rounds, then checkouts (each with its .venv)

Each round reads the Open Dental database with bare mysqlclient (run.py's ``raw`` step, the
ceiling) and then runs each checkout's ``vitalsync`` step (a full sync into an empty SQLite
mirror, its own process), alternating the order; it prints each sync's wall and CPU seconds, peak
memory and its ratio to that round's raw read, then the median ratio per checkout. Needs the
database run.py generates (``vs_bench_od``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

URL = "mysql://root@127.0.0.1:3306/vs_bench_od"


def step(tree: str, *argv: str) -> dict:
    home = tempfile.mkdtemp(prefix="vitalsync-ab-")
    try:
        done = subprocess.run([f"{tree}/.venv/bin/python", f"{tree}/bench/sync/run.py", "--step", *argv, "--url", URL,
                               "--home", home, "--database", f"sqlite:///{home}/mirror.db"],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=tree), cwd=tree)
        if done.returncode:
            raise SystemExit(f"{tree}: step {argv[0]} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    rounds, trees = int(sys.argv[1]), sys.argv[2:]
    step(trees[0], "raw")  # warms MariaDB's buffer pool, unmeasured
    ratios: dict[str, list[float]] = {tree: [] for tree in trees}
    for number in range(rounds):
        raw = step(trees[0], "raw")
        line = f"round {number}: raw {raw['seconds']:.2f} s, CPU {raw['cpu_s']:.2f}"
        for tree in trees if number % 2 == 0 else trees[::-1]:
            sync = step(tree, "vitalsync")
            ratios[tree].append(sync["rows_per_s"] / raw["rows_per_s"])
            line += (f" | {tree}: {sync['seconds']:.2f} s, CPU {sync['cpu_s']:.2f}, {sync['peak_mb']:.0f} MB,"
                     f" ratio {ratios[tree][-1]:.3f}")
        print(line, flush=True)
    for tree in trees:
        print(f"{tree}: median ratio {statistics.median(ratios[tree]):.3f} "
              f"({min(ratios[tree]):.3f}-{max(ratios[tree]):.3f})")


if __name__ == "__main__":
    main()
