"""Twilio SMS through the real ``twilio`` client, with Twilio's answers turned into send errors.

``base_url`` is the whole API address: ``https://api.twilio.com``, a regional edge such as
``https://api.dublin.ie1.twilio.com``, or a local fake. The client's edge and region are cleared so
that ``TWILIO_EDGE`` / ``TWILIO_REGION`` in the environment cannot rewrite that host (§5).
No exception raised here carries a phone number or a message body: Twilio's own messages can
(21211 names the number), so they are dropped, and the vendor exception is not chained.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProtocolError, ProxyError, ReadTimeoutError, SSLError

from vitalsync.core.errors import (AmbiguousSendError, ConfigError, PermanentSendError, PersonMustAct, SendError,
                                   TransientSendError, UnreachableError)
from vitalsync.dispatch.pace import Pacer
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.twilio_http import Urllib3HttpClient
from vitalsync.rules.render import sms_segments


REFUSALS: dict[int, tuple[type[SendError], str]] = {
    21211: (PermanentSendError, "the recipient's phone number is not valid"),
    21217: (PermanentSendError, "the recipient's phone number is not valid"),
    13224: (PermanentSendError, "the recipient's phone number is not valid"),
    21610: (PermanentSendError, "recipient unsubscribed"),
    21408: (PermanentSendError, "the Twilio account may not send to the recipient's region"),
    21215: (PermanentSendError, "the Twilio account may not call the recipient's region"),
    21614: (UnreachableError, "the recipient's number cannot receive text messages"),
    21612: (UnreachableError, "the recipient's number cannot be reached by text from this sender"),
}


class AccountRefused(TransientSendError, PersonMustAct):
    """Twilio refused the account's credentials or sender; nothing was sent, and a person must fix the config."""


def connect(account_sid: str, auth_token: str, base_url: str, timeout: float) -> tuple[Client, Urllib3HttpClient]:
    http = Urllib3HttpClient(timeout, base_url)
    client = Client(account_sid, auth_token, http_client=http)
    client.edge = client.region = None  # base_url already names the edge, if any
    client.api.base_url = base_url.rstrip("/")
    return client, http


@contextmanager
def translated(http: Urllib3HttpClient) -> Iterator[None]:
    """Turn whatever the twilio client raises into the send error that says what happens next."""
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise refusal(exc.status, exc.code, http.last_headers()) from None
    except (ConnectTimeoutError, SSLError, ProxyError):  # NewConnectionError is a ConnectTimeoutError
        raise TransientSendError("could not connect to Twilio; nothing was sent") from None
    except ReadTimeoutError:
        raise AmbiguousSendError("Twilio did not answer in time; the message may have been sent") from None
    except ProtocolError:
        raise AmbiguousSendError("the connection to Twilio broke after the request was sent; reconcile") from None
    except (HTTPError, TwilioException, json.JSONDecodeError, UnicodeDecodeError):
        raise AmbiguousSendError("Twilio's answer could not be read; the message may have been sent") from None


def refusal(status: int, code: int | None, headers: dict) -> SendError:
    if status == 401 or code in (20003, 21212, 21606):
        return AccountRefused()
    if status == 429 or code == 20429:
        error = TransientSendError("Twilio is rate limiting this account; retry later")
        error.retry_after = _seconds(headers.get("Retry-After"))
        return error
    if status == 504:
        return AmbiguousSendError("Twilio's gateway timed out; the message may have been sent")
    if status >= 500:
        error = TransientSendError(f"Twilio had a server error (HTTP {status}); retry later")
        error.retry_after = _seconds(headers.get("Retry-After"))
        return error
    kind, reason = REFUSALS.get(code, (PermanentSendError, f"Twilio refused the message (error {code}, HTTP {status})"))
    return kind(reason)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date Retry-After: Twilio sends seconds; the caller's own backoff applies


class TwilioSms:
    channels = frozenset({"sms"})

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str | None = None,
                 messaging_service_sid: str | None = None, status_callback: str | None = None,
                 base_url: str = "https://api.twilio.com", timeout: float = 10.0, pacer: Pacer | None = None) -> None:
        if bool(from_number) == bool(messaging_service_sid):
            raise ConfigError("twilio: set exactly one of from_number and messaging_service_sid")
        self.from_number, self.messaging_service_sid = from_number, messaging_service_sid
        self.status_callback = status_callback
        self.pacer = pacer  #: the sending number's (or service's) rate, in segments per second
        self._client, self._http = connect(account_sid, auth_token, base_url, timeout)

    def send(self, outgoing: Outgoing) -> str:
        if self.pacer:
            self.pacer.wait(sms_segments(outgoing.body))
        with translated(self._http):
            message = self._client.messages.create(
                to=outgoing.to, body=outgoing.body, from_=self.from_number or values.unset,
                messaging_service_sid=self.messaging_service_sid or values.unset,
                status_callback=self.status_callback or values.unset)
        return message.sid

    def find(self, outgoing: Outgoing, since: datetime, *, exclude: Collection[str] = ()) -> str | None:
        """The SID of a message to ``outgoing.to`` with exactly its body sent since ``since``, or None.

        Twilio filters the list on DateSent; the filter asks from midnight UTC of ``since``'s day
        (Twilio documents whole days), so nothing sent that day is missed. SIDs in ``exclude`` (those
        other messages already own) never match. Failures raise the usual send errors: a lookup that
        did not answer proves nothing. An unowned message to ``to`` with another body (the text may
        have been rendered from changed data) proves nothing either: AmbiguousSendError.
        """
        day = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        unowned = False
        with translated(self._http):
            for message in self._client.messages.stream(to=outgoing.to, date_sent_after=day, page_size=100):
                if message.sid in exclude:
                    continue
                if message.body == outgoing.body:
                    return message.sid
                unowned = True
        if unowned:
            raise AmbiguousSendError("the provider holds an unclaimed message to this recipient with another text")
        return None
