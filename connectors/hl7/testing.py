"""Talking to the listener as a PMS would: an MLLP client and an SIU message builder.

    with MllpClient(("127.0.0.1", 2575)) as pms:
        reply = pms.send(siu("S12", "1001", patient="P1", start="202603101000"))
        assert reply.code == "AA"
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass

_controls = itertools.count(1)


def segment(name: str, fields: dict[int, str]) -> str:
    """One segment from its non-empty fields by position (``{3: "P1^^^PMS^MR"}`` is field 3)."""
    values = [""] * max(fields, default=0)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


def siu(event: str = "S12", appointment: str = "1001", *, patient: str = "P1", start: str = "202603101000",
        minutes: int = 30, location: str = "MAIN", provider: str = "D1", status: str = "Booked",
        control: str | None = None, name: str = "Doe^Jane", home: str = "^PRN^CP^^1^212^5550123",
        work: str = "", language: str = "eng", processing: str = "P") -> str:
    """An SIU message as Open Dental sends it (v2.5.1 layout: SCH, TQ1, PID, RGS, AIL, AIP)."""
    control = control or f"MSG{next(_controls):05d}"
    return "\r".join([
        f"MSH|^~\\&|PMS|CLINIC|VITALSYNC|CLINIC|20260302120000||SIU^{event}^SIU_S12|{control}|{processing}|2.5.1",
        segment("SCH", {2: f"{appointment}^PMS", 7: "Checkup", 8: "NORMAL", 9: str(minutes), 10: "min", 25: status}),
        segment("TQ1", {1: "1", 6: f"{minutes}^min", 7: start}),
        segment("PID", {1: "1", 3: f"{patient}^^^PMS^MR", 5: name, 13: home, 14: work, 15: language}),
        "RGS|1",
        segment("AIL", {1: "1", 3: f"{location}^^^PMS", 6: start}),
        segment("AIP", {1: "1", 3: f"{provider}^Smith^John", 4: "d", 6: start}),
    ]) + "\r"


@dataclass(frozen=True)
class Reply:
    """An ACK as the sender reads it."""

    text: str

    def fields(self, name: str) -> list[str]:
        """The first segment ``name``'s fields (``[0]`` is its name), or [] when it has none."""
        for line in self.text.split("\r"):
            if line.startswith(name + "|"):
                return line.split("|")
        return []

    def field(self, name: str, number: int) -> str:
        fields = self.fields(name)
        return fields[number] if number < len(fields) else ""

    @property
    def code(self) -> str:
        return self.field("MSA", 1)

    @property
    def control(self) -> str:
        return self.field("MSA", 2)

    @property
    def reason(self) -> str:
        return self.field("MSA", 3)


class MllpClient:
    """A blocking MLLP client: one message out, its ACK back."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self._pending = b""

    def send(self, message: str | bytes, encoding: str = "utf-8") -> Reply:
        self.write(b"\x0b" + (message.encode(encoding) if isinstance(message, str) else message) + b"\x1c\r")
        return self.receive(encoding)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, encoding: str = "utf-8") -> Reply:
        while b"\x1c\r" not in self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the listener closed the connection without an ACK")
            self._pending += data
        reply, _, self._pending = self._pending.partition(b"\x1c\r")
        return Reply(reply.lstrip(b"\x0b").decode(encoding))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
