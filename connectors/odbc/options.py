"""``[connector] type = "odbc"``: the connection, one query per entity, and how its columns map."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync.connector import ConnectorOptions
from vitalsync.sync.tabular import Entity


class OdbcOptions(ConnectorOptions):
    """Any PMS readable through ODBC views (Dentrix, Eaglesoft): one query per entity."""

    connection_string: str = Field(description="An ODBC connection string without the password, e.g. 'DSN=dentrix;UID=reader'.")
    password_file: Path | None = Field(None, description="File with the password (else $VITALSYNC_ODBC_PASSWORD or the credential 'odbc_password').")
    queries: dict[Entity, str] = Field(description="One SQL query per entity; patients and appointments are required.")
    columns: dict[Entity, dict[str, str]] = Field({}, description="Per entity, vitalsync field = the query's column name.")
    statuses: dict[str, AppointmentStatus] = Field({}, description="The PMS's appointment status values mapped to vitalsync's.")
