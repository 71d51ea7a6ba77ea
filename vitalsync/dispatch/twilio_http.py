"""The twilio client's transport: urllib3 directly, in place of the requests session it ships with.

twilio lets a client bring its own ``HttpClient`` (``Client(http_client=...)``); everything above
it (request building, pagination, its exceptions) stays twilio's own. requests' per-request
machinery (preparing and merging settings, cookies, hooks, re-reading the environment) cost more
CPU than the rest of a send: measured by bench/dispatch, a send took ~0.8 ms of client CPU through
requests and ~0.45 ms through urllib3 (which requests itself sends through).

What requests gave is kept: the environment's proxy for the API host (read once, at start, with
NO_PROXY honoured), its CA bundle variables, certifi's roots otherwise, and no retry of any kind
(a POST retried by a transport could send a message twice). It logs nothing (twilio's own
transport logs each request's parameters, numbers and bodies, at INFO). Errors are urllib3's own;
:func:`vitalsync.dispatch.twilio_sms.translated` says what each means for the send.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from requests.utils import get_environ_proxies
from twilio.http import HttpClient
from twilio.http.response import Response


class Urllib3HttpClient(HttpClient):
    """A pooled, thread-safe transport; remembers each thread's last response headers (Retry-After)."""

    def __init__(self, timeout: float, base_url: str) -> None:
        super().__init__(logger=None, is_async=False, timeout=timeout)
        self.proxy = get_environ_proxies(base_url).get(urlsplit(base_url).scheme)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        settings = dict(retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                        cert_reqs="CERT_REQUIRED", ca_certs=bundle)
        self.pool = urllib3.ProxyManager(self.proxy, **settings) if self.proxy else urllib3.PoolManager(**settings)
        self._authorization: dict[tuple[str, str], str] = {}
        self._last = threading.local()

    def request(self, method: str, uri: str, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects: bool = False) -> Response:
        self._last.headers = {}
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = self._basic(auth)
        if params:
            uri += ("&" if "?" in uri else "?") + urlencode(params, doseq=True)
        body = None
        if data:
            body = urlencode(data, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        wait = urllib3.Timeout(connect=timeout, read=timeout) if timeout else None
        response = self.pool.request(method.upper(), uri, body=body, headers=headers, redirect=allow_redirects,
                                     **({"timeout": wait} if wait else {}))
        self._last.headers = response.headers
        return Response(response.status, response.data.decode("utf-8"), response.headers)

    def last_headers(self) -> dict:
        return getattr(self._last, "headers", {})

    def _basic(self, auth: tuple[str, str]) -> str:
        """The Authorization header of ``auth``, encoded once."""
        header = self._authorization.get(auth)
        if header is None:
            header = self._authorization[auth] = urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")["authorization"]
        return header
