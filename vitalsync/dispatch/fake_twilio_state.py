"""The fake Twilio's vocabulary: error bodies, resource JSON, switches, and signed callbacks.

Wire formats follow ``reference/messaging.md`` §1–§4: errors are ``{code, message, more_info, status}``,
callbacks are form-encoded POSTs signed with X-Twilio-Signature (HMAC-SHA1 of the URL followed by
the sorted parameter names and values, keyed with the auth token, base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

API_VERSION = "2010-04-01"
ERRORS = {  # code: (HTTP status, Twilio's message; real Twilio puts the number in 21211's message)
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."),
    21604: (400, "A 'To' phone number is required."),
    21205: (400, "Url parameter is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number {to} is not a valid mobile number"),
}


def error(code: int, **fields: str) -> tuple[int, dict]:
    status, text = ERRORS[code]
    return status, {"code": code, "message": text.format(**fields),
                    "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature, computed as Twilio computes it."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def rfc2822(at: float | None = None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(at))


def message_json(account: str, sid: str, form: dict[str, str], status: str, sender: str) -> dict:
    body, service, now = form.get("Body", ""), form.get("MessagingServiceSid"), rfc2822()
    segments = "0" if service else str(1 if len(body) <= 160 else -(-len(body) // 153))
    uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}.json"
    return {"account_sid": account, "api_version": API_VERSION, "body": body, "date_created": now,
            "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": form.get("From") or sender, "messaging_service_sid": service,
            "num_media": "0", "num_segments": segments, "price": None, "price_unit": "USD", "sid": sid,
            "status": status, "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form["To"], "uri": uri}


def call_json(account: str, sid: str, form: dict[str, str]) -> dict:
    now = rfc2822()
    return {"account_sid": account, "annotation": None, "answered_by": None, "api_version": API_VERSION,
            "caller_name": None, "date_created": now, "date_updated": now, "direction": "outbound-api",
            "duration": None, "end_time": None, "forwarded_from": None, "from": form["From"],
            "from_formatted": form["From"], "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": None, "price": None, "price_unit": "USD", "queue_time": "0", "sid": sid,
            "start_time": None, "status": "queued", "subresource_uris": {}, "to": form["To"],
            "to_formatted": form["To"], "trunk_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{account}/Calls/{sid}.json"}


@dataclass
class Switches:
    """Faults for the next N API requests (each counter counts down as requests use it)."""

    rate_limited: int = 0  #: 429 / 20429 with Retry-After
    retry_after: int = 2
    server_error: int = 0  #: 500 or 503
    server_status: int = 503
    hang: int = 0  #: the request is taken (the message exists) but the answer comes after hang_seconds
    hang_seconds: float = 30.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]


class Callbacks:
    """Posts signed, form-encoded callbacks from one thread, in the order they were queued."""

    def __init__(self, auth_token: str, delay: float = 0.0) -> None:
        self.auth_token, self.delay = auth_token, delay
        self.posted: list[tuple[str, dict[str, str], int]] = []  #: (url, params, HTTP status; 0 = unreachable)
        self._queue: queue.Queue = queue.Queue()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        threading.Thread(target=self._run, name="fake-twilio-callbacks", daemon=True).start()

    def enqueue(self, url: str, params: dict[str, str]) -> None:
        self._queue.put((url, params))

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": sign(self.auth_token, url, params)})
        try:
            with self._opener.open(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except OSError:
            status, text = 0, ""
        self.posted.append((url, params, status))
        return status, text

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued callback has been posted."""
        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self.delay:
                    time.sleep(self.delay)
                self.post(*item)
            finally:
                self._queue.task_done()
