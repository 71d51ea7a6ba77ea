"""The HL7 v2 connector: SIU scheduling messages pushed by the PMS over MLLP.

HL7 is a push source, so the connector is a listener, with two ways out for what it receives:

* **a sink** (``start(sink=...)``): each message's Batch is handed to ``sink(batch)`` at once, and
  the ACK (MSA-1 ``AA``) goes out only after the sink returned. The daemon's sink applies the
  batch to the mirror and commits, so the mirror is current when the PMS sees the ACK, and a
  message that could not be stored is refused (``AR``: send it again) rather than lost.
* **the journal** (no sink): messages are kept in memory and ``read(since, now)`` returns what
  changed since the cursor, like any polled connector. An ACKed message lives only in memory
  until the next read, so this mode is for tests and one-off reads.

A listener only ever sees the appointments the PMS sent since it started, never the whole
practice: its batches are never ``complete``, because a complete batch would remove from the
mirror every appointment it lacks.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError
from vitalsync.sync.connector import Batch
from vitalsync_connectors.hl7 import siu
from vitalsync_connectors.hl7.ack import ack
from vitalsync_connectors.hl7.journal import Journal
from vitalsync_connectors.hl7.message import Message, MessageError, decode, head, parse
from vitalsync_connectors.hl7.mllp import MllpServer, probe
from vitalsync_connectors.hl7.options import Hl7Options

Sink = Callable[[Batch], None]
log = structlog.get_logger("vitalsync.hl7")


class Hl7Connector:
    """An MLLP listener for SIU S12–S17 and S26; also a context manager that starts and stops it."""

    name = "hl7"
    Options = Hl7Options

    def __init__(self, listen: str = "127.0.0.1:2575", *, timezone: str = "UTC", region: str = "US",
                 sink: Sink | None = None) -> None:
        self.host, self.port = _address(listen)
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"connector.timezone: {timezone!r} is not a time zone") from None
        self.region, self.sink = region, sink
        self.journal = Journal()
        self.counts = {"applied": 0, "refused": 0, "ignored": 0}
        self._server: MllpServer | None = None
        self._starting = threading.Lock()

    @classmethod
    def from_config(cls, options: Hl7Options, config: Config, *, sink: Sink | None = None) -> Hl7Connector:
        """From ``[connector] type = "hl7"``; the listener starts with ``start()`` or the first read."""
        return cls(options.listen, timezone=options.timezone or config.schedule.timezone,
                   region=options.default_region, sink=sink)

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens; the real port once started on port 0."""
        return self._server.address if self._server else (self.host, self.port)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, sink: Sink | None = None) -> Hl7Connector:
        """Listen (at most once); a ``sink`` given here replaces the journal. PersonMustAct if the port is taken."""
        with self._starting:
            if sink is not None:
                if self._server is not None and sink != self.sink:
                    raise RuntimeError("the listener is running; stop it before giving it a sink")
                self.sink = sink
            if self._server is None:
                server = MllpServer(self.host, self.port, self._handle)
                server.start()
                self._server = server
                log.info("hl7_listening", connector=self.name, source="mllp")
        return self

    def stop(self) -> None:
        with self._starting:
            if self._server is not None:
                self._server.stop()
                self._server = None

    def __enter__(self) -> Hl7Connector:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def read(self, since: str | None, now: datetime) -> Batch:
        """What the journal holds past ``since`` (everything it holds when None); never complete."""
        self.start()
        return self.journal.since(since)

    def check(self) -> str:
        host, port = self.address
        if self.running:
            c = self.counts
            return (f"HL7 MLLP listener on {host}:{port}: {c['applied']} messages applied, "
                    f"{c['refused']} refused, {c['ignored']} ignored")
        return f"HL7 MLLP on {host}:{port}: {probe(host, port)}"

    def _handle(self, payload: bytes) -> bytes:
        """One message in, its ACK out: applied whole (AA) or not at all (AE, AR)."""
        message: Message | None = None
        text, encoding = payload.decode("latin-1"), "utf-8"
        now = datetime.now(timezone.utc).astimezone(self.zone)
        try:
            text, encoding = decode(payload)
            message = parse(text)
            if reason := siu.ignored(message):
                return self._reply(message, encoding, now, "ignored", text=reason)
            batch = siu.read(message, self.zone, self.region)
            self._deliver(batch)
            return self._reply(message, encoding, now, "applied")
        except MessageError as error:
            return self._reply(message or head(text), encoding, now, "refused", error=error)
        except Exception as exc:  # a bug of ours: refuse, so the PMS keeps the message and sends it again
            log.exception("hl7_message_crashed", error_type=type(exc).__name__)
            error = MessageError("vitalsync could not read this message; send it again", code=207, ack="AR")
            return self._reply(message, encoding, now, "refused", error=error)

    def _deliver(self, batch: Batch) -> None:
        if self.sink is None:
            self.journal.add(batch)
            return
        try:
            self.sink(batch)
        except Exception as exc:
            log.error("hl7_sink_failed", error_type=type(exc).__name__)
            raise MessageError("vitalsync could not store this message; send it again", code=207, ack="AR") from None

    def _reply(self, message: Message | None, encoding: str, now: datetime, outcome: str, **details) -> bytes:
        self.counts[outcome] += 1
        kind = message and f"{message.header.get(9, 1)}^{message.header.get(9, 2)}"
        log.info("hl7_message", kind=kind, outcome=outcome)
        return ack(message, now, **details).encode(encoding, errors="replace")


def _address(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:2575`` for IPv6)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"connector.listen: {listen!r} is not host:port (e.g. 0.0.0.0:2575)")
    return host, int(port)
