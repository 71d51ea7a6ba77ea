"""The drop folder: which export files are there, which are complete, and moving them to the archive.

A file belongs to the entity whose ``[connector] files`` pattern its name matches (without regard
to case); temporary and hidden names never do. It is complete when a ``<name>.done`` marker at
least as new as the file sits beside it, or when it was last modified ``settle_seconds`` before
the read's ``now`` (exporters that copy over a network share with a skewed clock should write
markers). An export is, per entity, the newest complete file: in the folder, else (applied and
archived already) in the archive. While one file of a new drop is still being written, its
entity keeps its previous file, and the others move on: every file is a whole snapshot of its
entity, so each step is consistent on its own.

A file is known by its identity (name, size, modification time in nanoseconds), which the cursor
records. Archived files go to ``ARCHIVE/<date it was written>/`` (``<date>.2/`` and on when a file
of that name is there already); a move keeps the modification time, so an applied export can be
found again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

from vitalsync.core.errors import PersonMustAct, RetryLater

MARKER = ".done"
#: Names exporters and editors give files still being written; never data.
TEMPORARY = ("*.tmp", "*.temp", "*.part", "*.partial", "*.crdownload", "*.swp", "~*", ".*", "*~", "*" + MARKER)
REQUIRED = ("patients", "appointments")
CURSOR = "csv:"

Identity = tuple[str, int, int]  #: file name, size, modification time (ns)


@dataclass(frozen=True)
class ExportFile:
    entity: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def identity(self) -> Identity:
        return (self.path.name, self.size, self.mtime_ns)

    @property
    def mtime(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, timezone.utc)


@dataclass(frozen=True)
class Export:
    files: dict[str, ExportFile]  #: entity → its newest complete file

    @property
    def identities(self) -> dict[str, Identity]:
        return {entity: file.identity for entity, file in self.files.items()}

    @property
    def cursor(self) -> str:
        return CURSOR + json.dumps(dict(sorted(self.identities.items())), separators=(",", ":"))


def applied(cursor: str | None) -> dict[str, Identity] | None:
    """The files of the export a cursor names; None for no cursor or one another connector wrote."""
    if not cursor or not cursor.startswith(CURSOR):
        return None
    try:
        raw = json.loads(cursor[len(CURSOR):])
        files = {str(entity): (str(name), int(size), int(mtime)) for entity, (name, size, mtime) in raw.items()}
    except (ValueError, TypeError, AttributeError):
        return None
    plain = all(Path(name).name == name for name, _, _ in files.values())
    return files if plain and all(entity in files for entity in REQUIRED) else None


class DropFolder:
    def __init__(self, folder: Path, archive: Path, patterns: dict[str, str], settle_seconds: int, zone: ZoneInfo) -> None:
        self.folder, self.archive, self.patterns = folder, archive, patterns
        self.settle, self.zone = timedelta(seconds=settle_seconds), zone

    def latest(self, now: datetime) -> Export:
        """The newest complete file of each entity; RetryLater while a required one is still being written."""
        present = self.scan(self.folder)
        files, waiting = {}, []
        for entity in self.patterns:
            mine = newest_first(f for f in present if f.entity == entity)
            ready = next((f for f in mine if self.complete(f, now)), None) or self._newest_archived(entity)
            if ready:
                files[entity] = ready
            elif mine:
                waiting.append(mine[0].path.name)
        missing = [entity for entity in REQUIRED if entity not in files]
        if missing and waiting:
            raise RetryLater(f"{', '.join(waiting)} in {self.folder} is still being written (no {MARKER} marker, "
                             f"changed less than {int(self.settle.total_seconds())} s ago)")
        if missing:
            wanted = ", ".join(f"{entity} ({self.patterns[entity]})" for entity in missing)
            raise PersonMustAct(f"no export in {self.folder}: no file for {wanted}; check that the PMS export "
                                f"writes there, or fix [connector] folder and files")
        return Export(files)

    def complete(self, file: ExportFile, now: datetime) -> bool:
        try:
            marker = file.path.with_name(file.path.name + MARKER).stat()
            if marker.st_mtime_ns >= file.mtime_ns:
                return True
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise failure(exc, file.path) from None
        return now - file.mtime >= self.settle

    def find(self, entity: str, identity: Identity) -> ExportFile:
        """The file an earlier cursor named, in the folder or in the archive; LookupError when it is gone."""
        name, size, mtime_ns = identity
        day = _day(mtime_ns, self.zone)
        places = [self.folder] + (sorted(self.archive.glob(f"{day}*/")) if self.archive.is_dir() else [])
        for place in places:
            found = stat(place / name, entity)
            if found and found.identity == identity:
                return found
        raise LookupError(name)

    def archive_applied(self, export: dict[str, Identity]) -> int:
        """Move the applied export's files, and the older files it superseded, to ARCHIVE/<date>/."""
        moved = 0
        for file in self.scan(self.folder):
            mark = export.get(file.entity)
            if mark and (file.identity == mark or file.mtime_ns < mark[2]):
                moved += self._move(file)
        return moved

    def scan(self, where: Path) -> list[ExportFile]:
        try:
            names = sorted(entry.name for entry in os.scandir(where) if entry.is_file())
        except FileNotFoundError:
            raise PersonMustAct(f"the export folder {where} does not exist; create it or fix [connector] folder") from None
        except OSError as exc:
            raise failure(exc, where) from None
        files = []
        for name in names:
            if any(fnmatchcase(name.casefold(), pattern) for pattern in TEMPORARY):
                continue
            entities = [e for e, pattern in self.patterns.items() if fnmatchcase(name.casefold(), pattern.casefold())]
            if len(entities) > 1:
                raise PersonMustAct(f"{where / name} matches the [connector] files patterns of both "
                                    f"{entities[0]} and {entities[1]}; make the patterns tell them apart")
            if entities and (found := stat(where / name, entities[0])):
                files.append(found)
        return files

    def _newest_archived(self, entity: str) -> ExportFile | None:
        if not self.archive.is_dir():
            return None
        days = sorted((p for p in self.archive.iterdir() if p.is_dir()), key=_day_order, reverse=True)
        for _, group in groupby(days, key=lambda p: p.name[:10]):
            if mine := newest_first(f for day in group for f in self.scan(day) if f.entity == entity):
                return mine[0]
        return None

    def _move(self, file: ExportFile) -> int:
        """Into ARCHIVE/<date of the file>/, or <date>.2/ and on when a file of that name is there already."""
        day, n = _day(file.mtime_ns, self.zone), 1
        try:
            while (self.archive / (folder := day if n == 1 else f"{day}.{n}") / file.path.name).exists():
                n += 1
            target = self.archive / folder
            target.mkdir(mode=0o700, parents=True, exist_ok=True)  # the files hold patient data
            shutil.move(file.path, target / file.path.name)
            marker = file.path.with_name(file.path.name + MARKER)
            if marker.exists():
                shutil.move(marker, target / marker.name)
        except FileNotFoundError:
            return 0  # another process archived it first
        except OSError as exc:
            raise failure(exc, file.path, f"cannot move it to {self.archive}") from None
        return 1


def newest_first(files) -> list[ExportFile]:
    return sorted(files, key=lambda f: (f.mtime_ns, f.path.name), reverse=True)


def stat(path: Path, entity: str) -> ExportFile | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise failure(exc, path) from None
    return ExportFile(entity, path, info.st_size, info.st_mtime_ns)


def _day_order(path: Path) -> tuple[str, int]:
    day, _, n = path.name.partition(".")
    return day, int(n) if n.isdigit() else 1


def _day(mtime_ns: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, zone).date().isoformat()


def failure(exc: OSError, path: Path, doing: str = "cannot read it") -> Exception:
    """Permissions need a person; anything else (a share that went away) is retried."""
    if isinstance(exc, PermissionError):
        return PersonMustAct(f"{path}: {doing}: permission denied; give the vitalsync user access")
    return RetryLater(f"{path}: {doing}: {exc.strerror or exc}")
