"""``[connector] type = "hl7"``: where the MLLP listener listens."""

from __future__ import annotations

from pydantic import Field, field_validator

from vitalsync.core import values
from vitalsync.sync.connector import ConnectorOptions


class Hl7Options(ConnectorOptions):
    """HL7 v2 scheduling messages (SIU) pushed over MLLP."""

    listen: str = Field("127.0.0.1:2575", description="host:port to listen on for MLLP.")

    _check_listen = field_validator("listen")(values.listen)
