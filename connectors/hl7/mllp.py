"""MLLP, the HL7 framing over TCP: ``<VT> message <FS><CR>``, answered the same way.

The server runs in background threads, one per connection; a connection may carry any number of
messages, and senders usually keep one open for days. ``handle`` turns a message's bytes into the
reply's bytes and is called for one message at a time, whichever connection it came on, so
messages apply in the order they arrived.
"""

from __future__ import annotations

import errno
import socket
import socketserver
import sys
import threading
from typing import Callable

import structlog

from vitalsync.core.errors import PersonMustAct

START, END = b"\x0b", b"\x1c\x0d"
MAX_BYTES = 1 << 20  #: an SIU message is a few kilobytes; a stream without an end is cut here
POLL = 0.2  #: how often an idle connection looks whether the server is stopping

log = structlog.get_logger("vitalsync.hl7")


def frame(payload: bytes) -> bytes:
    return START + payload + END


class FramingError(Exception):
    """The stream is not MLLP: a message grew past the limit without its end block."""


class FrameReader:
    """Bytes in, whole messages out; bytes between messages (keep-alive newlines) are dropped."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes, self._buffer = max_bytes, bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages = []
        while True:
            start = self._buffer.find(START)
            if start < 0:
                self._buffer.clear()
                return messages
            del self._buffer[:start]
            end = self._buffer.find(END)
            if end < 0:
                if len(self._buffer) > self.max_bytes:
                    raise FramingError()
                return messages
            messages.append(bytes(self._buffer[1:end]))
            del self._buffer[:end + len(END)]


class MllpServer:
    def __init__(self, host: str, port: int, handle: Callable[[bytes], bytes], *, max_bytes: int = MAX_BYTES) -> None:
        self.host, self.port, self.handle, self.max_bytes = host, port, handle, max_bytes
        self.stopping = threading.Event()
        self.connections: set[threading.Thread] = set()
        self.one_at_a_time = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address it listens on (the real port when it was asked for port 0)."""
        if self._server is None:
            return self.host, self.port
        return self._server.server_address[0], self._server.server_address[1]

    def start(self) -> None:
        server_class = _Server6 if ":" in self.host else _Server
        try:
            self._server = server_class((self.host, self.port), _Connection)
        except OSError as exc:
            raise PersonMustAct(_why(exc, f"{self.host}:{self.port}")) from None
        self._server.owner = self
        self.stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL},
                                        name="vitalsync-mllp", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening; a message being applied finishes and is answered first."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in list(self.connections):
            thread.join(timeout)
        self._server = self._thread = None


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a restart must not wait for the old socket's TIME_WAIT
    daemon_threads = True  # an open connection never keeps the process alive; stop() joins them
    owner: MllpServer

    def handle_error(self, request, client_address) -> None:
        # socketserver prints the traceback to stderr, and an HL7 message is all patient data: its type only
        log.error("mllp_connection_failed", error_type=sys.exc_info()[0].__name__, source="mllp")


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Connection(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.server.owner.connections.add(threading.current_thread())

    def finish(self) -> None:
        self.server.owner.connections.discard(threading.current_thread())

    def handle(self) -> None:
        owner: MllpServer = self.server.owner
        reader = FrameReader(owner.max_bytes)
        self.request.settimeout(POLL)
        while not owner.stopping.is_set():
            try:
                data = self.request.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                messages = reader.feed(data)
            except FramingError:
                log.warning("mllp_frame_too_long", count=owner.max_bytes)
                return
            for payload in messages:
                with owner.one_at_a_time:
                    reply = owner.handle(payload)
                try:
                    self.request.sendall(frame(reply))
                except OSError:
                    return  # the sender went away; it resends what it has no ACK for


def probe(host: str, port: int) -> str:
    """Whether a listener could start at this address, without starting one."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use (by the running vitalsync daemon, or by another program)"
            raise PersonMustAct(_why(exc, f"{host}:{port}")) from None
    return "the port is free; the listener starts with `vitalsync run`"


def _why(exc: OSError, address: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen for HL7 on {address}: another program uses that port; stop it or change [connector] listen"
    if exc.errno == errno.EACCES:
        return f"cannot listen for HL7 on {address}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen for HL7 on {address}: {exc.strerror or 'not an address of this machine'}"
