"""An emailed reply is read from the patient's own first line, found by the token in our Reply-To,
whether SendGrid posts its parsed fields or the raw MIME message; our emails carry that Reply-To."""

from __future__ import annotations

import json

import pytest

from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.sendgrid_email import SendGridEmail
from vitalsync.queue.tables import Message
from vitalsync.status.email_reply import first_own_line, read_inbound

TOKEN = "0123456789abcdef01234567"


@pytest.mark.parametrize(("text", "line"), [
    ("C\n\nOn Tue, Mar 3, 2026 at 9:00 AM Riverside Dental <clinic@example.org> wrote:\n> Reply C to confirm", "C"),
    ("\n\n  Yes I'll be there  \n-- \nAna\n", "Yes I'll be there"),
    ("> Reply C to confirm\nN", ""),
    ("Sí\n\nEl mar, 3 mar 2026 a las 9:00, Riverside Dental escribió:\n> Responda SI", "Sí"),
    ("N\r\n\r\n-----Original Message-----\r\nFrom: clinic@example.org", "N"),
    ("Sent from my iPhone", ""),
    ("-- \nAna", ""),
    ("", ""),
    ("👍", "👍"),
])
def test_the_first_own_line_is_what_the_patient_wrote(text, line):
    assert first_own_line(text) == line


def test_parsed_fields_give_the_token_the_sender_and_the_line():
    form = {"to": f"Riverside Dental <reply+{TOKEN}@reply.clinic.example>", "from": "Ana García <Ana@Example.com>",
            "text": "c\n\nOn Tue wrote:\n> Reply C", "envelope": json.dumps({"to": [f"reply+{TOKEN}@reply.clinic.example"],
                                                                             "from": "ana@example.com"})}
    reply = read_inbound(form)
    assert (reply.token, reply.sender, reply.line) == (TOKEN, "ana@example.com", "c")


def test_an_html_only_reply_is_read_without_its_quote():
    form = {"to": f"reply+{TOKEN}@reply.clinic.example", "from": "ana@example.com",
            "html": "<div>No, can't make it</div><blockquote><p>Reply C to confirm</p></blockquote>"}
    assert read_inbound(form).line == "No, can't make it"


def test_the_token_may_come_only_in_the_envelope():
    form = {"to": "undisclosed-recipients:;", "from": "ana@example.com", "text": "R",
            "envelope": json.dumps({"to": [f"reply+{TOKEN.upper()}@reply.clinic.example"], "from": "ana@example.com"})}
    assert read_inbound(form).token == TOKEN


def test_a_raw_mime_post_is_read_too():
    raw = (f"From: Ana <ana@example.com>\r\nTo: reply+{TOKEN}@reply.clinic.example\r\nSubject: Re: reminder\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           "S=C3=AD, ah=C3=AD estar=C3=A9\r\n\r\n> Responda SI\r\n"
           "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>ignored</p>\r\n--b--\r\n")
    reply = read_inbound({"email": raw})
    assert (reply.token, reply.sender, reply.line) == (TOKEN, "ana@example.com", "Sí, ahí estaré")


def test_a_post_without_a_sender_is_refused():
    with pytest.raises(ValueError):
        read_inbound({"to": f"reply+{TOKEN}@x.example", "text": "C"})


def test_each_message_gets_its_own_random_token():
    tokens = {Message(key=str(n), kind="k", channel="email", address="a@example.com", patient_key="p",
                      send_at=None).reply_token for n in range(50)}
    assert len(tokens) == 50 and all(len(token) == 24 for token in tokens)


def test_an_email_carries_the_reply_to_address_it_is_given():
    with FakeSendGrid("SG.key") as fake:
        sender = SendGridEmail("SG.key", "clinic@example.org", base_url=fake.url)
        sender.send(Outgoing(message_id=7, key="k", channel="email", to="ana@example.com", body="Reply C",
                             subject="Reminder", reply_to=f"reply+{TOKEN}@reply.clinic.example"))
        sent = [r.json() for r in fake.requests if r.path == "/v3/mail/send"]
    assert sent[0]["reply_to"] == {"email": f"reply+{TOKEN}@reply.clinic.example"}
