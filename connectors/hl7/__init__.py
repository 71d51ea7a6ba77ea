"""HL7 v2 scheduling messages (SIU) received over MLLP."""

from vitalsync_connectors.hl7.connector import Hl7Connector

__all__ = ["Hl7Connector"]
