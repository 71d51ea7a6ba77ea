"""An emailed reply, as SendGrid's Inbound Parse posts it, reduced to what the reply rules read.

Our emails carry ``Reply-To: reply+<token>@<reply_domain>``: the token is random and names one
message, nothing about the patient. A reply is read from its first line that is the patient's own:
quoted text (``>``), the "On … wrote:" line that introduces it, a forwarded or original message
and a signature end the search. SendGrid posts either its parsed fields (``text``, ``html``, ``to``,
``from``, ``envelope``) or, with "POST the raw, full MIME message", one ``email`` field; both work.
"""

from __future__ import annotations

import email
import json
import re
from dataclasses import dataclass
from email import policy
from email.utils import getaddresses
from html.parser import HTMLParser

TOKEN = re.compile(r"\breply\+([0-9a-f]{24})@", re.IGNORECASE)
#: lines that start what the patient did not write: the quoted message and what introduces it
QUOTE_START = re.compile(
    r"^(>|On .+wrote:?$|El .+escribi[oó]:?$|-{2,}\s*(Original|Forwarded|Mensaje)|From: |De: |Sent from my |Enviado desde mi )",
    re.IGNORECASE)
SIGNATURE = {"--", "-- "}


@dataclass(frozen=True)
class EmailReply:
    token: str | None  #: the message token from our Reply-To, when the reply went there
    sender: str  #: the address it came from (lower case)
    line: str  #: the patient's first own line, "" when there is none


def read_inbound(form: dict[str, str]) -> EmailReply:
    """The reply in an Inbound Parse post (its form fields, decoded); ValueError when it is not one."""
    if form.get("email"):
        return _from_mime(form["email"])
    recipients = " ".join([form.get("to", ""), form.get("cc", ""), _envelope_to(form.get("envelope", ""))])
    sender = _address(form.get("from", "")) or _envelope_from(form.get("envelope", ""))
    if not sender:
        raise ValueError("the post has no sender")
    text = form.get("text") or _html_text(form.get("html", ""))
    return EmailReply(token=_token(recipients), sender=sender, line=first_own_line(text))


def first_own_line(text: str) -> str:
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if raw.rstrip() in SIGNATURE or QUOTE_START.match(line):
            return ""
        if line:
            return line
    return ""


def _from_mime(raw: str) -> EmailReply:
    message = email.message_from_string(raw, policy=policy.default)
    sender = _address(str(message.get("from", "")))
    if not sender:
        raise ValueError("the message has no From address")
    recipients = " ".join(str(message.get(name, "")) for name in ("to", "cc", "delivered-to", "x-original-to"))
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        text = content if body.get_content_subtype() == "plain" else _html_text(content)
    return EmailReply(token=_token(recipients), sender=sender, line=first_own_line(text))


def _token(recipients: str) -> str | None:
    match = TOKEN.search(recipients)
    return match.group(1).lower() if match else None


def _address(header: str) -> str:
    found = [address for _, address in getaddresses([header]) if "@" in address]
    return found[0].strip().lower() if found else ""


def _envelope(raw: str) -> dict:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _envelope_to(raw: str) -> str:
    to = _envelope(raw).get("to") or []
    return " ".join(str(item) for item in (to if isinstance(to, list) else [to]))


def _envelope_from(raw: str) -> str:
    return _address(str(_envelope(raw).get("from") or ""))


class _Text(HTMLParser):
    """The text of an HTML body, a line per block; quoted blocks (``<blockquote>``) left out."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.quoted = 0

    def handle_starttag(self, tag, attrs):
        if tag == "blockquote":
            self.quoted += 1
            self.parts.append("\n> ")
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "blockquote" and self.quoted:
            self.quoted -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data if not self.quoted else data.replace("\n", "\n> "))


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
