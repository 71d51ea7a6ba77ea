"""The ``[connector]`` section: one model per connector type, chosen by ``type``.

Passwords, tokens and API keys never sit here: each connector names the secret it reads (a
``*_file`` key, ``VITALSYNC_<NAME>`` or the systemd credential ``<name>``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vitalsync.core import values

from vitalsync.core.vocab import AppointmentStatus

#: what Open Dental's ``PUT /appointments/{AptNum}/Confirm`` takes as ``confirmVal``; an int is a ``defNum``
OpenDentalConfirm = Union[Literal["None", "Sent", "Confirmed", "Not Accepted", "Failed"], Annotated[int, Field(ge=1)]]
Entity = Literal["locations", "providers", "patients", "appointments", "recalls", "pickups"]


class _Connector(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(None, description=(
        "The zone of the PMS's local times; empty means [schedule] timezone."))
    default_region: str = Field("US", description="Region for phone numbers written without a country code (ISO 3166).")

    _check_region = field_validator("default_region")(values.region)


class DemoConnector(_Connector):
    """A synthetic practice: two locations, families, Spanish speakers, changes between syncs."""

    type: Literal["demo"] = Field("demo", description="The connector: demo, opendental, odbc, csv, hl7 or fhir.")
    seed: int = Field(7, description="The seed of the synthetic practice (same seed, same practice).")
    start: date | None = Field(None, description="The practice's first day; empty means today.")
    patients: int = Field(400, ge=10, le=100_000, description="How many patients.")
    weeks: int = Field(6, ge=1, le=52, description="How many weeks of appointments.")


class OpenDentalConnector(_Connector):
    """Open Dental's MySQL/MariaDB database, read-only."""

    type: Literal["opendental"] = Field(description="The connector type.")
    url: str = Field(description="mysql://user@host:3306/opendental (the password comes from a secret).")
    password_file: Path | None = Field(None, description="File with the database password (else $VITALSYNC_OPENDENTAL_PASSWORD or the credential 'opendental_password').")
    overlap_seconds: int = Field(5, ge=0, le=3600, description="Re-read this many seconds before the last high-water mark.")
    write_back: bool = Field(False, description=(
        "Write patients' confirmations and declines to Open Dental through its REST API."))
    write_confirmed: OpenDentalConfirm = Field("Confirmed", description=(
        "What a confirmation sets: a confirmVal (None, Sent, Confirmed, Not Accepted, Failed; \"Confirmed\" is the "
        "definition of Open Dental's preference ApptEConfirmStatusAccepted) or the DefNum of an ApptConfirmed definition."))
    write_declined: OpenDentalConfirm = Field("Not Accepted", description=(
        "What a decline sets: a confirmVal (\"Not Accepted\" is ApptEConfirmStatusDeclined's definition) or a DefNum."))
    api_url: str = Field("https://api.opendental.com/api/v1", description="The Open Dental REST API, for write-back.")
    api_key_file: Path | None = Field(None, description="File with the API key 'ODFHIR developer/customer' (else the credential 'opendental_api_key').")


class OdbcConnector(_Connector):
    """Any PMS readable through ODBC views (Dentrix, Eaglesoft): one query per entity."""

    type: Literal["odbc"] = Field(description="The connector type.")
    connection_string: str = Field(description="An ODBC connection string without the password, e.g. 'DSN=dentrix;UID=reader'.")
    password_file: Path | None = Field(None, description="File with the password (else $VITALSYNC_ODBC_PASSWORD or the credential 'odbc_password').")
    queries: dict[Entity, str] = Field(description="One SQL query per entity; patients and appointments are required.")
    columns: dict[Entity, dict[str, str]] = Field({}, description="Per entity, vitalsync field = the query's column name.")
    statuses: dict[str, AppointmentStatus] = Field({}, description="The PMS's appointment status values mapped to vitalsync's.")


class CsvConnector(_Connector):
    """Nightly export files dropped in a folder."""

    type: Literal["csv"] = Field(description="The connector type.")
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


class Hl7Connector(_Connector):
    """HL7 v2 scheduling messages (SIU) pushed over MLLP."""

    type: Literal["hl7"] = Field(description="The connector type.")
    listen: str = Field("127.0.0.1:2575", description="host:port to listen on for MLLP.")

    _check_listen = field_validator("listen")(values.listen)


class FhirConnector(_Connector):
    """A FHIR R4 server: Appointment, Patient, Practitioner, Location."""

    type: Literal["fhir"] = Field(description="The connector type.")
    base_url: str = Field(description="The FHIR base URL, e.g. https://ehr.example.org/fhir/R4.")
    token_file: Path | None = Field(None, description="File with the bearer token (else $VITALSYNC_FHIR_TOKEN or the credential 'fhir_token').")
    page_size: int = Field(200, ge=1, le=1000, description="Resources per page (_count).")


ConnectorConfig = Annotated[
    Union[DemoConnector, OpenDentalConnector, OdbcConnector, CsvConnector, Hl7Connector, FhirConnector],
    Field(discriminator="type"),
]
TYPES = {"demo": DemoConnector, "opendental": OpenDentalConnector, "odbc": OdbcConnector, "csv": CsvConnector,
         "hl7": Hl7Connector, "fhir": FhirConnector}


def writes_back(options: BaseModel) -> bool:
    """Whether the ``[connector]`` section turns write-back on (only connectors that can have the key)."""
    return bool(getattr(options, "write_back", False))
