"""SendGrid's Inbound Parse as a sender of posts: a patient's emailed reply, as SendGrid delivers it.

SendGrid receives the mail for the reply domain (its MX) and POSTs it to the Parse URL as
``multipart/form-data``: the parsed fields (``headers``, ``dkim``, ``to``, ``from``, ``text``,
``html``, ``sender_ip``, ``envelope``, ``subject``, ``charsets``, ``SPF``, ``attachments``), or with
"POST the raw, full MIME message" the fields ``email``, ``to``, ``from``, ``envelope`` … It
authenticates with nothing but the URL: a secret path or basic-auth credentials written into it.
A non-2xx answer makes SendGrid retry for up to three days.

    status = post_inbound("http://127.0.0.1:8088/webhooks/sendgrid/inbound", auth=("parse", secret),
                          sender="ana@example.com", to="reply+TOKEN@reply.clinic.example", text="C")
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from email.message import EmailMessage


def inbound_fields(*, sender: str, to: str, text: str = "", html: str = "", subject: str = "Re: your appointment",
                   raw: bool = False) -> dict[str, str]:
    envelope = json.dumps({"to": [to], "from": sender})
    if raw:
        mime = EmailMessage()
        mime["From"], mime["To"], mime["Subject"] = sender, to, subject
        mime.set_content(text or " ")
        if html:
            mime.add_alternative(html, subtype="html")
        return {"email": mime.as_string(), "to": to, "from": sender, "envelope": envelope, "sender_ip": "127.0.0.1",
                "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}), "SPF": "pass",
                "dkim": "{@example.com : pass}"}
    return {"headers": f"From: {sender}\nTo: {to}\nSubject: {subject}\n", "dkim": "{@example.com : pass}",
            "to": to, "from": sender, "text": text, "html": html, "sender_ip": "127.0.0.1", "envelope": envelope,
            "subject": subject, "attachments": "0",
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": "utf-8", "html": "utf-8"}),
            "SPF": "pass"}


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """The body and Content-Type of a form post, as SendGrid sends it."""
    boundary = "xYzZY" + secrets.token_hex(8)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_inbound(url: str, *, auth: tuple[str, str] | None = None, raw: bool = False, **message: str) -> int | None:
    """POST one reply to ``url``; the receiver's status, or None when it could not be reached."""
    body, content_type = multipart(inbound_fields(raw=raw, **message))
    headers = {"Content-Type": content_type, "User-Agent": "Sendlib/1.0"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None
