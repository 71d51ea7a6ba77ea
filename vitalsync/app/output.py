"""Printing rows as a table, CSV or JSON, and a progress bar when attached to a terminal."""

from __future__ import annotations

import csv
import json
import sys

from vitalsync.console.queries import LOG_COLUMNS  # noqa: F401  (the CLI's and the console's columns)


def emit(rows: list[dict], fmt: str, columns: list[str] | None = None, out=None) -> None:
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
        table(rows, columns, out)


def table(rows: list[dict], columns: list[str], out) -> None:
    if not rows:
        out.write("(nothing)\n")
        return
    cells = [[_cell(row.get(c), c.endswith("_rate"))[:48] for c in columns] for row in rows]
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
