"""``[connector] type = "opendental"``: the database to read and, optionally, the REST API to write answers to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from vitalsync.sync.connector import ConnectorOptions

#: what Open Dental's ``PUT /appointments/{AptNum}/Confirm`` takes as ``confirmVal``; an int is a ``defNum``
OpenDentalConfirm = Union[Literal["None", "Sent", "Confirmed", "Not Accepted", "Failed"], Annotated[int, Field(ge=1)]]


class OpenDentalOptions(ConnectorOptions):
    """Open Dental's MySQL/MariaDB database, read-only."""

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
