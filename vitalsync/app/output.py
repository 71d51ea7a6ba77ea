"""Printing rows as a table, CSV or JSON, and a progress bar when attached to a terminal.

A table is for a person: its times are the clinic's local time with the zone's abbreviation
(``2026-03-04 09:00 EST``). CSV and JSON are for programs: their times stay ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import json
import sys
from zoneinfo import ZoneInfo

from vitalsync.console.queries import LOG_COLUMNS  # noqa: F401  (the CLI's and the console's columns)
from vitalsync.core.times import shown


def emit(rows: list[dict], fmt: str, columns: list[str] | None = None, out=None, zone: ZoneInfo | None = None) -> None:
    """``rows`` as ``fmt``; a table shows its time columns in ``zone`` (UTC when None), labelled."""
    out = out or sys.stdout
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == "json":
        json.dump(rows, out, indent=2, ensure_ascii=False, default=str)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c), False) for c in columns])
    else:
        table(rows, columns, out, zone)


def is_time(column: str) -> bool:
    return column == "at" or column.endswith("_at")


def table(rows: list[dict], columns: list[str], out, zone: ZoneInfo | None = None) -> None:
    if not rows:
        out.write("(nothing)\n")
        return
    # the reason is read whole (it is the last column): only the others are cut to keep rows on a line
    cells = [[shown(row.get(c), zone) if is_time(c) else _cell(row.get(c), c.endswith("_rate"))[:None if c == "reason" else 48]
              for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")


def _cell(value, as_rate: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    if as_rate and isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, label: str, stream=None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.live = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.live:
            return
        filled = int(30 * done / total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (30 - filled)}] {done * 100 // total:3d}%")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()
