"""The hl7 connector (in progress)."""
