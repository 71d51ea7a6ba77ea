"""The fhir connector (in progress)."""
