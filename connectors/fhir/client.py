"""HTTP to a FHIR R4 server: the bearer token, retries, and searches followed through their next links.

A status code becomes what the caller does next: 401/403 and 404 need a person, 429 and 5xx and a
lost connection are retried and then reported as :class:`RetryLater`.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from vitalsync.core.errors import PersonMustAct, RetryLater

ATTEMPTS = 3
#: Backoff between attempts; tests set ``client.WAIT = tenacity.wait_none()``.
WAIT = wait_exponential(multiplier=0.5, max=4)
TOKEN_REFUSED = "the FHIR server refused the token; check the credential 'fhir_token'"


class _Transient(Exception):
    """One attempt failed in a way the next attempt may not."""


class FhirClient:
    """One conversation with the server (a read or a check); use it as a context manager."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        self.base = httpx.URL(base_url.rstrip("/") + "/")
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def get(self, path: str, params: dict | None = None, *, what: str) -> tuple[dict, httpx.Response]:
        """The JSON body of ``GET base/path``; ``what`` names the request in errors."""
        return self._get(self.base.join(path), params, what)

    def search(self, kind: str, params: dict) -> tuple[list[dict], datetime | None]:
        """Every ``kind`` resource the search matches, across pages, and the server's time of the first page."""
        body, response = self._get(self.base.join(kind), params, f"{kind} search")
        server_time = _server_time(body, response)
        resources, seen = [], set()
        while True:
            if body.get("resourceType") != "Bundle":
                raise PersonMustAct(f"the {kind} search at {self._where()} did not answer a FHIR Bundle; check base_url")
            resources += _matches(body, kind)
            url = next((link.get("url") for link in _dicts(body.get("link")) if link.get("relation") == "next"), None)
            if not url:
                return resources, server_time
            url = self._next_url(url, kind)
            if url in seen:
                raise RetryLater(f"the {kind} search at {self._where()} returned a next link it had already given")
            seen.add(url)
            body, response = self._get(url, None, f"{kind} search")

    def _next_url(self, url: str, kind: str) -> httpx.URL:
        absolute = self.base.join(url)
        # The token goes only where the configured base points.
        if (absolute.scheme, absolute.host, absolute.port) != (self.base.scheme, self.base.host, self.base.port):
            raise PersonMustAct(f"the {kind} search at {self._where()} gave a next link to another server "
                                f"({absolute.host}); set base_url to the address the server announces")
        return absolute

    def _get(self, url: httpx.URL, params: dict | None, what: str) -> tuple[dict, httpx.Response]:
        try:
            for attempt in Retrying(stop=stop_after_attempt(ATTEMPTS), wait=WAIT,
                                    retry=retry_if_exception_type(_Transient), reraise=True):
                with attempt:
                    return self._once(url, params, what)
        except _Transient as exc:
            raise RetryLater(f"the FHIR server at {self._where()}: {what}: {exc} ({ATTEMPTS} attempts)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, url: httpx.URL, params: dict | None, what: str) -> tuple[dict, httpx.Response]:
        try:
            response = self.http.get(url, params=params)
        except httpx.UnsupportedProtocol:
            raise PersonMustAct(f"base_url {self.base} is not an http or https address") from None
        except httpx.TimeoutException:
            raise _Transient("timed out") from None
        except httpx.TransportError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise PersonMustAct(f"the TLS certificate of {self._where()} was not accepted; "
                                    "install the clinic's CA certificate or fix base_url") from None
            raise _Transient(f"could not connect ({type(exc).__name__})") from None
        status = response.status_code
        if status in (401, 403):
            raise PersonMustAct(TOKEN_REFUSED)
        if status == 429 or status >= 500:
            raise _Transient(f"answered {status}")
        if status == 410:  # a paged search the server has already forgotten; the next read starts over
            raise RetryLater(f"the FHIR server at {self._where()} expired the {what} while it was paged")
        if status == 404:
            raise PersonMustAct(f"the FHIR server at {self._where()} has no {what} (404); check base_url")
        if status != 200:
            raise PersonMustAct(f"the FHIR server at {self._where()} refused the {what} ({status})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PersonMustAct(f"the {what} at {self._where()} did not answer FHIR JSON; check base_url")
        return body, response

    def _where(self) -> str:
        return f"{self.base.host}{':' + str(self.base.port) if self.base.port else ''}{self.base.path.rstrip('/')}"


def _dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _matches(bundle: dict, kind: str) -> list[dict]:
    """The bundle's ``kind`` resources that matched the search (not included or outcome entries)."""
    return [entry["resource"] for entry in _dicts(bundle.get("entry"))
            if isinstance(entry.get("resource"), dict) and entry["resource"].get("resourceType") == kind
            and (entry.get("search") or {}).get("mode", "match") == "match"]


def _server_time(body: dict, response: httpx.Response) -> datetime | None:
    """When the server answered: the Bundle's meta.lastUpdated, else the HTTP Date header."""
    stamp = (body.get("meta") or {}).get("lastUpdated")
    if stamp:
        try:
            return datetime.fromisoformat(stamp)
        except (TypeError, ValueError):
            pass
    if "date" in response.headers:
        try:
            return parsedate_to_datetime(response.headers["date"])
        except (TypeError, ValueError):
            pass
    return None
