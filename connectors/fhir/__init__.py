"""The FHIR R4 connector: Appointment, Patient, Practitioner and Location over HTTP."""

from vitalsync_connectors.fhir.connector import FhirConnector

__all__ = ["FhirConnector"]
