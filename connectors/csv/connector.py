"""The CSV drop-folder connector: export files a PMS writes into a folder, nightly or more often.

Each export file is a full snapshot of its entity. The export read is, per entity, the newest
complete file (see :mod:`.files`). ``read(None, now)`` returns it as a complete batch;
``read(cursor, now)`` returns what changed between the export the cursor names and the newest one,
or an empty batch with the same cursor when nothing newer is complete.

The cursor names the files of the export it came from (name, size, modification time). Passing it
back is the caller's proof that the export was applied (vitalsync passes the cursor of the last
*successful* sync), so a read first moves that export's files, and the older ones it superseded,
to ``ARCHIVE/<date>/``. A sync that fails or is held never stores its cursor: the next read gets
the older cursor again and delivers the same newer export again. Nothing is archived before it
was applied, and no export lives in memory only.

The difference is taken against the previous export's rows, kept in memory from the read that
returned them, or read again from its files (in the folder or the archive) by a new process. When
those files are gone (a cursor another connector wrote, an archive cleaned by hand, an export
overwritten in place before it was archived), the read returns a complete batch instead: bigger,
never wrong.
"""

from __future__ import annotations

import codecs
import csv
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import Batch
from vitalsync.sync.tabular import mapping_problems, timezone_problems
from vitalsync_connectors.csv import files as drop
from vitalsync_connectors.csv.mapping import FIELDS, Mapper, positions
from vitalsync_connectors.csv.options import CsvOptions
from vitalsync_connectors.csv.snapshot import FileRows, Snapshot, combine, read_file

log = structlog.get_logger("vitalsync.sync.csv")
DEFAULT_FILES = {"patients": "patients*.csv", "appointments": "appointments*.csv"}


class CsvConnector:
    """Export files in a folder; read-only towards the PMS (it only moves processed files to the archive)."""

    name = "csv"
    Options = CsvOptions

    def __init__(self, folder: Path | str, *, archive: Path | str | None = None, files: dict[str, str] | None = None,
                 columns: dict[str, dict[str, str]] | None = None, statuses: dict[str, str] | None = None,
                 datetime_format: str = "%Y-%m-%d %H:%M", date_format: str = "%Y-%m-%d", delimiter: str = ",",
                 encoding: str = "utf-8-sig", settle_seconds: int = 30, timezone: str = "UTC", region: str = "US",
                 location_name: str = "Main office") -> None:
        files, columns, statuses = dict(files or DEFAULT_FILES), dict(columns or {}), dict(statuses or {})
        _validate(files, columns, statuses, timezone, encoding, delimiter)
        self.zone, self.location_name = ZoneInfo(timezone), location_name
        self.columns, self.encoding, self.delimiter = columns, encoding, delimiter
        folder = Path(folder)
        self.drop = drop.DropFolder(folder, Path(archive) if archive else folder / "archive", files, settle_seconds, self.zone)
        self.mapper = Mapper(zone=self.zone, region=region, statuses=statuses,
                             datetime_format=datetime_format, date_format=date_format)
        self._read: dict[tuple[str, drop.Identity], FileRows] = {}  # the files of the last two exports, parsed

    @classmethod
    def from_config(cls, options: CsvOptions, config: Config) -> CsvConnector:
        """From ``[connector] type = "csv"``; relative folders are relative to the config file."""
        return cls(config.relative(options.folder), archive=options.archive and config.relative(options.archive),
                   files=dict(options.files), columns={e: dict(m) for e, m in options.columns.items()},
                   statuses={name: status.value for name, status in options.statuses.items()},
                   datetime_format=options.datetime_format, date_format=options.date_format,
                   delimiter=options.delimiter, encoding=options.encoding, settle_seconds=options.settle_seconds,
                   timezone=options.timezone or config.schedule.timezone, region=options.default_region,
                   location_name=config.clinic.name)

    def read(self, since: str | None, now: datetime) -> Batch:
        if now.tzinfo is None:
            raise ValueError("the csv connector needs a time-zone aware now")
        applied = drop.applied(since)
        if applied:
            if moved := self.drop.archive_applied(applied):
                log.info("csv_archived", count=moved)
        export = self.drop.latest(now)
        if applied == export.identities:
            return Batch(complete=False, cursor=export.cursor)
        current = self._snapshot(export.files)
        previous = self._previous(applied) if applied else None
        self._read = {k: v for k, v in self._read.items() if k[1] in (export.identities | (applied or {})).values()}
        if previous is None:
            return current.batch(export.cursor)
        return current.changes_since(previous, export.cursor)

    def check(self) -> str:
        """The folder, the archive and the newest file of each entity, whose header is checked."""
        present = self.drop.scan(self.drop.folder)
        _writable(self.drop.folder, "move processed files out of")
        _writable(self.drop.archive, "archive processed files in")
        newest = []
        for entity, pattern in self.drop.patterns.items():
            mine = drop.newest_first(f for f in present if f.entity == entity)
            if not mine:
                newest.append(f"no {pattern} yet")
                continue
            self._header(mine[0])
            newest.append(f"{mine[0].path.name} ({mine[0].mtime.astimezone(self.zone):%Y-%m-%d %H:%M})")
        return f"csv folder {self.drop.folder}: {', '.join(newest)}; archive {self.drop.archive}"

    def _snapshot(self, files: dict[str, drop.ExportFile]) -> Snapshot:
        parsed = {entity: self._rows(file) for entity, file in files.items()}
        return combine(parsed, location_name=self.location_name, zone=self.zone)

    def _previous(self, applied: dict[str, drop.Identity]) -> Snapshot | None:
        parsed = {}
        for entity, identity in applied.items():
            if entity not in self.drop.patterns:
                continue
            if (rows := self._read.get((entity, identity))) is None:
                try:
                    rows = self._rows(self.drop.find(entity, identity))
                except (LookupError, PersonMustAct, RetryLater):
                    return None  # gone, or unreadable with today's mapping: a complete batch instead
            parsed[entity] = rows
        return combine(parsed, location_name=self.location_name, zone=self.zone)

    def _rows(self, file: drop.ExportFile) -> FileRows:
        key = (file.entity, file.identity)
        if key not in self._read:
            self._read[key] = read_file(file, self.mapper, self.columns.get(file.entity, {}),
                                        encoding=self.encoding, delimiter=self.delimiter)
        return self._read[key]

    def _header(self, file: drop.ExportFile) -> None:
        try:
            with file.path.open(encoding=self.encoding, newline="") as handle:
                header = next(csv.reader(handle, delimiter=self.delimiter), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise PersonMustAct(f"{file.path}: cannot read its header ({exc.__class__.__name__}); "
                                "check [connector] encoding and delimiter") from None
        except OSError as exc:
            raise drop.failure(exc, file.path) from None
        if header:
            positions(file.entity, file.path.name, header, self.columns.get(file.entity, {}))


def _writable(folder: Path, doing: str) -> None:
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PersonMustAct(f"vitalsync cannot write to {existing}, so it cannot {doing} {folder}; "
                            "give it write access, or set [connector] archive")


def _validate(files, columns, statuses, timezone, encoding, delimiter) -> None:
    problems = [f"connector.files: '{entity}' is not one of {', '.join(FIELDS)}" for entity in files if entity not in FIELDS]
    problems += [f"connector.files: a pattern for {entity} is required" for entity in drop.REQUIRED if not files.get(entity)]
    problems += mapping_problems(columns, FIELDS)
    problems += [f"connector.statuses: '{status}' for '{name}' is not one of {', '.join(AppointmentStatus)}"
                 for name, status in statuses.items() if status not in set(AppointmentStatus)]
    problems += timezone_problems(timezone)
    try:
        codecs.lookup(encoding)
    except LookupError:
        problems.append(f"connector.encoding: '{encoding}' is not a known text encoding")
    if len(delimiter) != 1:
        problems.append("connector.delimiter: must be one character")
    if problems:
        raise ConfigError(problems)
