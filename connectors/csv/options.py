"""``[connector] type = "csv"``: the drop folder, its file names and how their columns map."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import ConnectorOptions
from vitalsync.sync.tabular import Entity


class CsvOptions(ConnectorOptions):
    """Nightly export files dropped in a folder."""

    folder: Path = Field(description="Where the PMS drops its export files.")
    archive: Path | None = Field(None, description="Where processed files go; empty means FOLDER/archive.")
    files: dict[Entity, str] = Field({"patients": "patients*.csv", "appointments": "appointments*.csv"},
                                     description="A file-name pattern per entity.")
    columns: dict[Entity, dict[str, str]] = Field({}, description="Per entity, vitalsync field = the file's column header.")
    statuses: dict[str, AppointmentStatus] = Field({}, description="The export's appointment status values mapped to vitalsync's.")
    datetime_format: str = Field("%Y-%m-%d %H:%M", description="strptime format of date-times in the files.")
    date_format: str = Field("%Y-%m-%d", description="strptime format of dates in the files.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="The field separator.")
    encoding: str = Field("utf-8-sig", description="The files' text encoding.")
    settle_seconds: int = Field(30, ge=0, description="A file is complete when unchanged for this long (or has a .done marker).")
