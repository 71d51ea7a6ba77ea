"""A small FHIR R4 server for tests and the demo: real HTTP on 127.0.0.1, real searchset Bundles.

    with FakeFhirServer(token="s3cret") as server:
        server.put({"resourceType": "Patient", "id": "1", "name": [{"family": "Ruiz"}]})
        FhirConnector(server.base_url, token="s3cret").read(None, now)

It answers ``GET metadata``, ``GET <Type>/<id>`` and ``GET <Type>?_lastUpdated=ge…&_count=N``, paged
the way HAPI pages: the first Bundle's next link is ``<base>?_getpages=<id>&_getpagesoffset=N``
over a snapshot of the results. Switches make it refuse the token, answer 503, or hang.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

TYPES = ("Appointment", "Patient", "Practitioner", "Location")
PREFIX = "/fhir"
DEFAULT_COUNT = 20
HANG_SECONDS = 30
KEPT_SEARCHES = 100  #: older searches expire, as on a real server
COMPARE = {"ge": lambda a, b: a >= b, "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    authorization: str | None


class FakeFhirServer:
    """Resources in memory, each stamped with ``meta.lastUpdated`` when it changes."""

    def __init__(self, *, token: str | None = None) -> None:
        self.token = token  #: when set, every request but ``metadata`` needs ``Authorization: Bearer <token>``
        self.unavailable = 0  #: answer 503 to this many next requests
        self.hang = False  #: hold each request without answering (until stopped)
        self.stamp_bundles = True  #: give search Bundles ``meta.lastUpdated`` (else only the Date header dates them)
        self.advertised_url: str | None = None  #: the base its links name, as behind a misconfigured proxy
        self.keep_searches = True  #: keep results for next pages (else every next page has expired: 410)
        self.requests: list[Seen] = []
        self._resources: dict[tuple[str, str], dict] = {}
        self._searches: dict[str, tuple[datetime, list[dict]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __enter__(self) -> FakeFhirServer:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name="fake-fhir", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    # -- the store, changed as a clinic's staff would change it

    def put(self, resource: dict, at: datetime | None = None) -> dict:
        """Create or replace ``resource`` (an id is given when missing); it is stamped ``at`` (default now)."""
        resource = copy.deepcopy(resource)
        resource.setdefault("id", uuid.uuid4().hex[:12])
        with self._lock:
            old = self._resources.get((resource["resourceType"], resource["id"]))
            version = int(old["meta"]["versionId"]) + 1 if old else 1
            resource["meta"] = {"versionId": str(version), "lastUpdated": _instant(at or _now())}
            self._resources[resource["resourceType"], resource["id"]] = resource
        return copy.deepcopy(resource)

    def get(self, kind: str, key: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._resources[kind, key])

    def cancel(self, appointment_id: str) -> dict:
        appointment = self.get("Appointment", appointment_id)
        appointment["status"] = "cancelled"
        appointment["cancelationReason"] = {"text": "Patient called to cancel"}
        return self.put(appointment)

    def move(self, appointment_id: str, by: timedelta = timedelta(days=1)) -> dict:
        appointment = self.get("Appointment", appointment_id)
        for field in ("start", "end"):
            if field in appointment:
                appointment[field] = (datetime.fromisoformat(appointment[field]) + by).isoformat()
        return self.put(appointment)

    def delete(self, appointment_id: str) -> dict:
        """FHIR servers keep a removed appointment as ``entered-in-error``."""
        appointment = self.get("Appointment", appointment_id)
        appointment["status"] = "entered-in-error"
        return self.put(appointment)

    # -- what the handler serves

    def search(self, kind: str, query: dict[str, list[str]]) -> tuple[datetime, list[dict]]:
        checks = []
        for value in query.get("_lastUpdated", []):
            prefix, moment = value[:2], datetime.fromisoformat(value[2:])
            if prefix not in COMPARE or moment.tzinfo is None:
                raise ValueError(f"_lastUpdated: {value!r} is not prefix + instant")
            checks.append((COMPARE[prefix], moment))
        with self._lock:
            at = _now()
            found = [copy.deepcopy(r) for (k, _), r in self._resources.items() if k == kind and all(
                compare(datetime.fromisoformat(r["meta"]["lastUpdated"]), moment) for compare, moment in checks)]
        found.sort(key=lambda r: (r["meta"]["lastUpdated"], r["id"]))
        return at, found

    def remember(self, at: datetime, found: list[dict]) -> str:
        """Keep a search's results for its next pages; the id goes in the next links."""
        search_id = uuid.uuid4().hex
        if self.keep_searches:
            with self._lock:
                self._searches[search_id] = (at, found)
                while len(self._searches) > KEPT_SEARCHES:
                    del self._searches[next(iter(self._searches))]
        return search_id

    def bundle(self, kind: str, search_id: str, at: datetime, found: list[dict], offset: int, count: int,
               self_url: str) -> dict:
        links = [{"relation": "self", "url": self_url}]
        for relation, start in (("next", offset + count), ("previous", offset - count)):
            if 0 <= start < len(found) and (relation == "next" or offset > 0):
                links.append({"relation": relation, "url": f"{self.advertised_url or self.base_url}?" + urlencode(
                    {"_getpages": search_id, "_getpagesoffset": start, "_count": count, "_bundletype": "searchset"})})
        bundle = {"resourceType": "Bundle", "id": search_id, "type": "searchset", "total": len(found), "link": links,
                  "entry": [{"fullUrl": f"{self.base_url}/{kind}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                            for r in found[offset:offset + count]]}
        if self.stamp_bundles:
            bundle["meta"] = {"lastUpdated": _instant(at)}
        return bundle

    def page(self, search_id: str) -> tuple[datetime, list[dict]] | None:
        with self._lock:
            return self._searches.get(search_id)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeFHIR/1.0"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes; keep-alive would wait on delayed ACKs

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        fake: FakeFhirServer = self.server.fake
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        fake.requests.append(Seen(url.path, query, self.headers.get("Authorization")))
        if fake.hang:
            fake._stopping.wait(HANG_SECONDS)
            self.close_connection = True
            return
        if fake.unavailable > 0:
            fake.unavailable -= 1
            return self._outcome(503, "transient", "the server is busy")
        parts = url.path.removeprefix(PREFIX).strip("/").split("/") if url.path.startswith(PREFIX) else None
        if parts == ["metadata"]:
            return self._send(200, _capability_statement())
        if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self._outcome(401, "login", "the access token is missing or not valid")
        if parts == [""] and "_getpages" in query:
            return self._page(fake, query)
        if parts and parts[0] in TYPES and len(parts) == 1:
            return self._search(fake, parts[0], query)
        if parts and parts[0] in TYPES and len(parts) == 2:
            try:
                return self._send(200, fake.get(parts[0], parts[1]))
            except KeyError:
                pass
        return self._outcome(404, "not-found", f"no resource at {url.path}")

    def _search(self, fake: FakeFhirServer, kind: str, query: dict[str, list[str]]) -> None:
        try:
            at, found = fake.search(kind, query)
            count = int(query.get("_count", [DEFAULT_COUNT])[0])
        except ValueError as exc:
            return self._outcome(400, "invalid", str(exc))
        if query.get("_summary") == ["count"]:
            return self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(found)})
        search_id, count = fake.remember(at, found), max(count, 1)
        self._send(200, fake.bundle(kind, search_id, at, found, 0, count, f"http://{self.headers.get('Host')}{self.path}"))

    def _page(self, fake: FakeFhirServer, query: dict[str, list[str]]) -> None:
        search = fake.page(query["_getpages"][0])
        if search is None:
            return self._outcome(410, "not-found", "the search has expired")
        search_id, (at, found) = query["_getpages"][0], search
        try:
            offset, count = int(query.get("_getpagesoffset", ["0"])[0]), int(query.get("_count", [DEFAULT_COUNT])[0])
        except ValueError:
            return self._outcome(400, "invalid", "_getpagesoffset and _count are numbers")
        kind = found[0]["resourceType"] if found else "Resource"
        self._send(200, fake.bundle(kind, search_id, at, found, offset, count, f"http://{self.headers.get('Host')}{self.path}"))

    def _outcome(self, status: int, code: str, text: str) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="fhir"'} if status == 401 else {}
        self._send(status, {"resourceType": "OperationOutcome",
                            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}, headers)

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/fhir+json;charset=utf-8",
                            "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server signature
        pass


def _capability_statement() -> dict:
    return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"], "software": {"name": "vitalsync fake FHIR server", "version": "1"},
            "rest": [{"mode": "server", "resource": [
                {"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [{"name": "_lastUpdated", "type": "date"}]} for kind in TYPES]}]}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _instant(moment: datetime) -> str:
    """As HAPI writes it: milliseconds and a numeric offset."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
