"""``[connector] type = "fhir"``: the server, its token and the page size."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vitalsync.sync.connector import ConnectorOptions


class FhirOptions(ConnectorOptions):
    """A FHIR R4 server: Appointment, Patient, Practitioner, Location."""

    base_url: str = Field(description="The FHIR base URL, e.g. https://ehr.example.org/fhir/R4.")
    token_file: Path | None = Field(None, description="File with the bearer token (else $VITALSYNC_FHIR_TOKEN or the credential 'fhir_token').")
    page_size: int = Field(200, ge=1, le=1000, description="Resources per page (_count).")
