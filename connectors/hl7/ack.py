"""The reply to every message: an ACK whose MSA-1 is AA (applied), AE (a wrong message: resending it
will not help) or AR (not taken now: send it again), with the reason in MSA-3 and ERR."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from vitalsync_connectors.hl7.message import Message, MessageError, Separators, escape

#: HL7 table 0357, the message error condition codes vitalsync uses.
ERRORS = {100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
          103: "Table value not found", 207: "Application internal error"}
POSITION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:-(\d+)(?:\.(\d+))?)?$")


def ack(message: Message | None, now: datetime, *, code: str = "AA", text: str = "",
        error: MessageError | None = None) -> str:
    """The ACK for ``message`` (None when it could not even be parsed), in its own separators."""
    sep = message.sep if message else Separators()
    header = message.header if message else None

    def raw(number: int) -> str:
        return header.raw(number) if header else ""

    event = escape(header.get(9, 2), sep) if header else ""
    msh = ["MSH", sep.encoding, raw(5), raw(6), raw(3), raw(4), now.strftime("%Y%m%d%H%M%S%z"), "",
           f"ACK{sep.component}{event}{sep.component}ACK", "VS" + uuid.uuid4().hex[:18], raw(11) or "P",
           raw(12) or "2.5.1"]
    if raw(18):
        msh += [""] * 5 + [raw(18)]
    if error is not None:
        code, text = error.ack, error.reason
    segments = [msh, ["MSA", code, raw(10), escape(text, sep)] if text else ["MSA", code, raw(10)]]
    if error is not None:
        c = sep.component
        segments.append(["ERR", "", _location(error.where, c), f"{error.code}{c}{ERRORS.get(error.code, '')}{c}HL70357",
                         "E", "", "", "", escape(error.reason, sep)])
    return "\r".join(sep.field.join(fields) for fields in segments) + "\r"


def _location(where: str, c: str) -> str:
    """ERR-2 (ERL): ``SCH-11.4`` becomes ``SCH^1^11^1^4``."""
    match = POSITION.match(where)
    if not match:
        return ""
    segment, field, component = match.groups()
    return c.join(part for part in (segment, "1", field, component and "1", component) if part)
