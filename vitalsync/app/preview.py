"""``vitalsync plan --dry-run [--kinds-dir DIR]``: print what planning would change now, per kind."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

from vitalsync.app.output import table
from vitalsync.core.times import shown
from vitalsync.queue.preview import Change, preview
from vitalsync.rules.kinds import Trigger, load_kinds


def dry_run(runtime, kinds_dir: Path | None, fmt: str) -> int:
    config = runtime.config
    kinds = load_kinds(config.message_kinds.enabled, kinds_dir) if kinds_dir else runtime.kinds
    result = preview(runtime.engine, kinds, config, runtime.clock)
    if fmt == "json":
        rows = [{**asdict(kind), "examples": [_json(c) for c in kind.examples]} for kind in result]
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    zone = ZoneInfo(config.schedule.timezone)
    source = f"the kinds in {kinds_dir}" if kinds_dir else "the current kinds"
    print(f"Planning now with {source} would change (nothing was written):")
    table([{"kind": k.kind, "queued": k.queued, "cancelled": k.cancelled, "moved": k.moved} for k in result],
          ["kind", "queued", "cancelled", "moved"], sys.stdout)
    for kind in result:
        print(f"\n{kind.kind}, for example:")
        for change in kind.examples:
            print(f"  {_line(change, zone, kinds)}")
    if kinds_dir:
        unused = sorted(p.stem for p in kinds_dir.glob("*.toml") if p.stem not in config.message_kinds.enabled)
        if unused:
            print(f"\nnot previewed (not in [message_kinds] enabled): {', '.join(unused)}")
    return 0


def _line(change: Change, zone: ZoneInfo, kinds) -> str:
    subject = "recall" if kinds[change.kind].trigger is Trigger.RECALL_DUE else "pick-up order"
    about = f"appointment {change.appointment}" if change.appointment else f"{subject} {change.subject}"
    who = f"{about} (patient {change.patient})"
    if change.change == "queued":
        return f"queued     {who}: send {shown(change.send_at, zone)}"
    if change.change == "moved":
        return f"moved      {who}: {shown(change.was, zone)} -> {shown(change.send_at, zone)}"
    return f"cancelled  {who}: was {shown(change.was, zone)}; {change.reason}"


def _json(change: Change) -> dict:
    row = asdict(change)
    for name in ("send_at", "was"):
        row[name] = row[name].isoformat() if row[name] else None
    return row
