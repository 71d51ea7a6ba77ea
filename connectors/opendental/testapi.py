"""A local stand-in for Open Dental's REST API (api.opendental.com), for tests and demos.

It speaks the part vitalsync uses: ``PUT /api/v1/appointments/{AptNum}/Confirm`` with exactly one
of ``confirmVal`` or ``defNum``, authorised by ``ODFHIR {developer key}/{customer key}``. It keeps
each appointment's confirmation, answers 401 to another key and 400 to a bad body, as the API does,
and can be taken down (connection refused) and brought back on the same port::

    with FakeOpenDentalApi("dev/cust") as api:
        ConfirmApi(api.url, "dev/cust").confirm(12)
        api.confirmations == {12: "Confirmed"}
        api.down(); ...; api.up()
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vitalsync_connectors.opendental.api import CONFIRM_VALUES

PATH = "/api/v1/appointments/"


class FakeOpenDentalApi:
    """Records every request; answers the next of ``statuses`` when one is queued (else as the API would)."""

    def __init__(self, key: str = "dev-key/customer-key") -> None:
        self.key = key
        self.requests: list[tuple[str, str, str, dict]] = []  #: (method, path, Authorization, body)
        self.statuses: list[int] = []  #: forced answers, taken first (e.g. 503 while "down for maintenance")
        self.confirmations: dict[int, str | int] = {}  #: AptNum -> confirmVal or defNum, as last set
        self.written: list[tuple[int, str | int]] = []  #: each confirmation the API accepted, in order
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def up(self) -> FakeOpenDentalApi:
        """Listen (again, on the same port once it had one)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        """Stop listening: connections are refused until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenDentalApi:
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def answer(self, path: str, authorization: str, body: dict) -> tuple[int, object]:
        with self._lock:
            self.requests.append(("PUT", path, authorization, body))
            if self.statuses:
                status = self.statuses.pop(0)
                return status, "ok" if status == 200 else "Forced answer."
            if authorization != f"ODFHIR {self.key}":
                return 401, "Invalid authorization header."
            number = path[len(PATH):-len("/Confirm")] if path.startswith(PATH) and path.endswith("/Confirm") else ""
            if not number.isdigit():
                return 404, "Not found."
            if len(body) != 1 or ("confirmVal" in body) == ("defNum" in body):
                return 400, "Exactly one of confirmVal or defNum is required."
            value = body.get("confirmVal", body.get("defNum"))
            if "confirmVal" in body and value not in CONFIRM_VALUES:
                return 400, "confirmVal is invalid."
            if "defNum" in body and (not isinstance(value, int) or value < 1):
                return 400, "defNum is invalid."
            self.confirmations[int(number)] = value
            self.written.append((int(number), value))
            return 200, "ok"


def _handler(api: FakeOpenDentalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - the http.server spelling
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except ValueError:
                body = {"unreadable": True}
            status, payload = api.answer(self.path, self.headers.get("Authorization", ""),
                                         body if isinstance(body, dict) else {"unreadable": True})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Handler
