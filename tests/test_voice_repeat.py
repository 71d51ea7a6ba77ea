"""A call's "press 3 to hear this message again" repeats the message itself, over HTTP.

The reminder goes out as a call through the real twilio client to the fake Twilio; the fake then
posts the signed keypress to the receiver served by uvicorn, as Twilio does, and the answer is the
TwiML Twilio would play. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from html import unescape

from sqlmodel import select

from tests.test_fallback import GATHER, no_proxy, providers  # noqa: F401 - the shared fixtures
from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.queue.tables import Message

LANDLINE = "+12125557777"


def said(twiml: str) -> list[str]:
    return [unescape(text) for text in re.findall(r"<Say[^>]*>(.*?)</Say>", twiml, re.S)]


def called(runtime, connector, clock, twilio, **ann) -> tuple[str, str]:
    """Ann, reachable only by phone, gets her reminder as a call; (call SID, the TwiML it was made with)."""
    open_practice(connector, patient("1", "Ann", mobile=None, email=None, landline=LANDLINE, **ann))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    clock.set(ny(2, 10))
    assert runtime.dispatch_once().sent == 1
    [sid] = twilio.calls
    [request] = [r for r in twilio.requests if r.path.endswith("/Calls.json")]
    return sid, request.form["Twiml"][0]


def test_pressing_3_plays_the_message_again_then_the_prompt(runtime, connector, clock, providers):  # noqa: F811
    twilio, _, base = providers
    sid, call = called(runtime, connector, clock, twilio)
    message, prompt = said(call)
    assert "remind Ann of an appointment on Wednesday, March 4 at 10:00 AM" in message and "Press 1" in prompt

    status, again = twilio.press(base + GATHER, sid, "3")
    assert status == 200
    assert said(again) == [message, prompt]  # the same words, then the same question
    gather = again[again.index("<Gather"):again.index("</Gather>")]
    assert f'action="{base}{GATHER}"' in gather and message.split(",")[0] in unescape(gather)

    status, wrong = twilio.press(base + GATHER, sid, "7")  # a wrong key: only the question again
    assert status == 200 and said(wrong) == [prompt]
    status, confirmed = twilio.press(base + GATHER, sid, "1")
    assert status == 200 and said(confirmed) == ["Thank you. Your appointment is confirmed. Goodbye."]
    with session(runtime.engine) as db:
        assert db.exec(select(Message.status).where(Message.provider_ref == sid)).one() == "confirmed"


def test_a_spanish_call_repeats_in_spanish(runtime, connector, clock, providers):  # noqa: F811
    twilio, _, base = providers
    sid, call = called(runtime, connector, clock, twilio, language="es")
    status, again = twilio.press(base + GATHER, sid, "3")
    assert status == 200 and said(again) == said(call)
    assert "Le recordamos a Ann su cita del miércoles" in said(again)[0] and 'language="es-US"' in again
