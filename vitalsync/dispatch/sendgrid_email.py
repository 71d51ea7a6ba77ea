"""Email through SendGrid's v3 mail send, with the official ``sendgrid`` client.

Only our message id travels in ``custom_args`` (SendGrid keeps custom args and categories as
"not PII", visible to its staff): no names, no appointment details. Errors are mapped to what
happens next, and never carry an address or a body:

    400, 413, other 4xx          PermanentSendError   (the message ends failed)
    401, 403                     PermanentSendError   ("check the SendGrid API key")
    429, 5xx                     TransientSendError   (retry_after from X-RateLimit-Reset on a 429)
    no connection (URLError)     TransientSendError   (the request was never sent)
    timeout or reset afterwards  AmbiguousSendError   (it may have left: reconcile by message id)
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
from collections.abc import Collection
from datetime import datetime, timedelta, timezone

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail, ReplyTo, To

from vitalsync.core.clock import Clock, SystemClock
from vitalsync.core.errors import AmbiguousSendError, PermanentSendError, SendError, TransientSendError
from vitalsync.dispatch.pace import Pacer
from vitalsync.dispatch.sender import Outgoing

CUSTOM_ARG = "vitalsync_message"  #: the custom arg that carries our message id back in events
# python_http_client logs whole request bodies (addresses, appointment text) at DEBUG
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


class SendGridEmail:
    channels = frozenset({"email"})

    def __init__(self, api_key: str, from_email: str, from_name: str | None = None, *,
                 base_url: str = "https://api.sendgrid.com", timeout: float = 10.0, clock: Clock | None = None,
                 pacer: Pacer | None = None) -> None:
        if not api_key:
            raise ValueError("SendGridEmail needs an API key")  # else the client silently reads $SENDGRID_API_KEY
        self.from_email, self.from_name, self.clock = from_email, from_name, clock or SystemClock()
        self._api = SendGridAPIClient(api_key=api_key, host=base_url.rstrip("/"))
        self._api.client.timeout = timeout  # python_http_client passes it to urlopen for connect and each read
        self.pacer = pacer  #: emails per second from this sender

    def send(self, outgoing: Outgoing) -> str:
        if not outgoing.subject:
            raise PermanentSendError("an email needs a subject; the message template has none")
        try:
            mail = Mail(from_email=From(self.from_email, self.from_name), to_emails=To(outgoing.to),
                        subject=outgoing.subject, plain_text_content=outgoing.body, html_content=outgoing.html or None)
            mail.custom_arg = CustomArg(CUSTOM_ARG, str(outgoing.message_id))
            if outgoing.reply_to:
                mail.reply_to = ReplyTo(outgoing.reply_to)
            body = mail.get()
        except (ValueError, KeyError, TypeError, AttributeError):  # the helpers choke on unparseable addresses
            raise PermanentSendError("the email could not be built: the recipient is not a usable address") from None
        if self.pacer:
            self.pacer.wait()
        try:
            response = self._api.send(body)
        except HTTPError as exc:
            raise self._refused(exc) from None
        except urllib.error.URLError as exc:  # raised while connecting or sending: nothing reached SendGrid
            raise _transient(f"could not reach SendGrid: {type(exc.reason).__name__}") from None
        except (OSError, http.client.HTTPException) as exc:  # raised while waiting for the answer
            raise AmbiguousSendError(f"no answer from SendGrid after sending: {type(exc).__name__}") from None
        reference = response.headers.get("X-Message-Id")
        if not reference:
            raise AmbiguousSendError(f"SendGrid answered {response.status_code} without an X-Message-Id")
        return reference

    def find(self, outgoing: Outgoing, since: datetime, *, exclude: Collection[str] = ()) -> str | None:
        """The X-Message-Id of the email SendGrid holds for this message, or None when it holds none.

        Asks the Email Activity API (``GET /v3/messages``) for messages to ``outgoing.to`` that carry
        our message id in their custom args (``unique_args``) and had an event since ``since``. Each
        result's ``msg_id`` is the X-Message-Id followed by ``.filter…`` per recipient; references in
        ``exclude`` (owned by other messages) never match. Any failure raises a send error: an answer
        we could not read proves nothing. Accounts without the Email Activity add-on get 403, so
        their flagged emails stay flagged for a person.
        """
        start = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # a day ahead: a clock of ours running behind SendGrid's must not hide a message that is there
        end = (self.clock.now() + timedelta(days=1)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = (f'unique_args[\'{CUSTOM_ARG}\']="{outgoing.message_id}" AND to_email="{_quoted(outgoing.to)}" '
                 f"AND last_event_time BETWEEN TIMESTAMP '{start}' AND TIMESTAMP '{end}'")
        try:
            response = self._api.client.messages.get(query_params={"query": query, "limit": 100})
            found = json.loads(response.body)["messages"]
            references = [str(item["msg_id"]).split(".", 1)[0] for item in found]
        except HTTPError as exc:
            raise self._refused(exc) from None
        except urllib.error.URLError as exc:
            raise _transient(f"could not reach SendGrid: {type(exc.reason).__name__}") from None
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as exc:
            raise AmbiguousSendError(f"SendGrid's activity answer could not be read: {type(exc).__name__}") from None
        return next((reference for reference in references if reference and reference not in exclude), None)

    def _refused(self, exc: HTTPError) -> SendError:
        status = exc.status_code
        if status in (401, 403):
            return PermanentSendError(f"SendGrid refused the request ({status}): check the SendGrid API key "
                                      "and the verified sender identity")
        if status == 429:
            return _transient("SendGrid is rate limiting (429)", self._retry_after(exc.headers))
        if status >= 500:
            return _transient(f"SendGrid failed ({status})")
        return PermanentSendError(f"SendGrid refused the message ({status}): {_fields(exc.body)}")

    def _retry_after(self, headers) -> float | None:
        try:
            reset = float(headers.get("X-RateLimit-Reset"))
        except (TypeError, ValueError):
            return None
        return max(0.0, reset - self.clock.now().timestamp())


def _transient(message: str, retry_after: float | None = None) -> TransientSendError:
    error = TransientSendError(message)
    error.retry_after = retry_after  # type: ignore[attr-defined]  # seconds, when SendGrid said
    return error


def _quoted(value: str) -> str:
    """A value inside the query language's double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _fields(body: bytes) -> str:
    """The fields SendGrid complains about (``personalizations.0.to.0.email``), never their values."""
    try:
        fields = [str(e.get("field")) for e in json.loads(body)["errors"] if e.get("field")]
    except (ValueError, KeyError, TypeError, AttributeError):
        fields = []
    return "invalid " + ", ".join(fields) if fields else "bad request"
