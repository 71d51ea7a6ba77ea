"""Twilio's webhooks: signed status callbacks, inbound texts and voice keypresses into the lifecycle.

Every request is checked against X-Twilio-Signature with the library's own RequestValidator over the
*public* URL (what Twilio called, not what uvicorn saw behind a proxy) and every form parameter.
Anything unsigned, forged or unreadable is refused with 403 before a row is read.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import structlog
from sqlmodel import Session, select
from starlette.datastructures import MultiDict
from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from vitalsync.core.vocab import ReplyIntent
from vitalsync.dispatch.compose import compose
from vitalsync.dispatch.recheck import gather as gather_facts
from vitalsync.dispatch.twilio_voice import VOICES
from vitalsync.queue.tables import Message
from vitalsync.status.deliveries import Delivery
from vitalsync.status.record import REPLY_WINDOW, record_reply

log = structlog.get_logger("vitalsync.webhooks")
MAX_FORM = 64 * 1024  #: Twilio's forms are a few hundred bytes; an SMS body at most 1,600 characters
SMS_DELIVERED = frozenset({"delivered", "read"})
SMS_NOT_DELIVERED = frozenset({"undelivered", "failed"})
CALL_NOT_ANSWERED = frozenset({"no-answer", "busy", "failed", "canceled"})
GATHER_PATH = "/webhooks/twilio/voice/gather"
SAID = {  # language: (after a confirm, after a decline)
    "en": ("Thank you. Your appointment is confirmed. Goodbye.",
           "Thank you. We have let the clinic know you cannot come. Goodbye."),
    "es": ("Gracias. Su cita está confirmada. Adiós.", "Gracias. Hemos avisado a la clínica que no puede venir. Adiós."),
}


class Refused(Exception):
    """The request is not one we act on: ``status`` says how to answer (400 or 403)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Hooks:
    """What every handler needs; built once per app by :func:`vitalsync.status.webhooks.webhook_app`."""

    engine: object
    config: object
    clock: object
    public_url: str
    twilio_auth_token: str | None
    db_work: object = field(default=None)  #: run(fn) → fn(db) in a thread, own session, committed
    deliveries: object = field(default=None)  #: a DeliveryWriter: delivery reports, committed in groups
    kinds: dict = field(default_factory=dict)  #: message kinds by name: the text a call repeats

    def __post_init__(self) -> None:
        self.public_url = self.public_url.rstrip("/")
        self.validator = RequestValidator(self.twilio_auth_token) if self.twilio_auth_token else None


async def signed_form(hooks: Hooks, request: Request) -> MultiDict:
    """The request's form parameters, once its X-Twilio-Signature is verified; else :class:`Refused` (403)."""
    if hooks.validator is None:
        raise Refused(403)
    if too_long(request, MAX_FORM):
        raise Refused(403)
    raw = await request.body()
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or len(raw) > MAX_FORM:
        raise Refused(403)
    try:
        form = MultiDict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict"))
        url = hooks.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # the exact public URL first (one HMAC, the usual case); validate() also tries the URL with
        # and without its port, as Twilio's back end signs both ways, and checks a JSON body's hash
        valid = (hmac.compare_digest(hooks.validator.compute_signature(url, form), signature)
                 or hooks.validator.validate(url, form, signature))
    except (UnicodeError, ValueError, TypeError):
        raise Refused(403) from None
    if not valid:
        raise Refused(403)
    return form


def too_long(request: Request, limit: int) -> bool:
    """True when the declared Content-Length is over ``limit`` or is not a number."""
    declared = request.headers.get("content-length") or "0"
    return not (declared.isascii() and declared.isdigit()) or int(declared) > limit


def need(form: MultiDict, name: str) -> str:
    value = form.get(name)
    if not value:
        raise Refused(400)
    return value


def twiml(body: str, media_type: str = "text/xml") -> Response:
    return Response(body, media_type=media_type)


async def sms_status(hooks: Hooks, request: Request) -> Response:
    form = await signed_form(hooks, request)
    sid, status = need(form, "MessageSid"), need(form, "MessageStatus").lower()
    if status not in SMS_DELIVERED | SMS_NOT_DELIVERED:
        return Response(status_code=200)  # queued, sent, accepted …: no news for the lifecycle
    code = "".join(ch for ch in form.get("ErrorCode", "") if ch.isdigit())[:8]  # digits only: no PHI in the detail
    detail = "" if status in SMS_DELIVERED else f"twilio {status}" + (f" {code}" if code else "")
    await _delivery(hooks, "twilio_sms", sid, status in SMS_DELIVERED, detail)
    return Response(status_code=200)


async def voice_status(hooks: Hooks, request: Request) -> Response:
    form = await signed_form(hooks, request)
    sid, status = need(form, "CallSid"), need(form, "CallStatus").lower()
    answered_by = form.get("AnsweredBy", "").lower()
    if status == "completed":
        delivered = answered_by != "fax"  # a person, a voicemail (machine_*), or AMD off / unsure
        await _delivery(hooks, "twilio_voice", sid, delivered, "" if delivered else "call answered by fax")
    elif status in CALL_NOT_ANSWERED:
        await _delivery(hooks, "twilio_voice", sid, False, f"call {status}")
    return Response(status_code=200)


async def _delivery(hooks: Hooks, source: str, reference: str, delivered: bool, detail: str) -> None:
    # the writer logs each group it commits; a line per callback only for an unknown message
    if not await hooks.deliveries.record(Delivery(reference, delivered, detail)):
        log.info("delivery_unknown_message", source=source)


async def sms_inbound(hooks: Hooks, request: Request) -> Response:
    form = await signed_form(hooks, request)
    address, body = need(form, "From"), form.get("Body", "")
    advanced_opt_out = form.get("OptOutType", "").upper()  # Twilio already answered STOP/START/HELP itself

    def work(db: Session):
        now = hooks.clock.now()
        _locked(db, select(Message).where(Message.address == address, Message.sent_at >= now - REPLY_WINDOW)
                .order_by(Message.id), every=True)
        reply = record_reply(db, hooks.config, "sms", address, body, now)
        return reply.intent, reply.answer, reply.message_id is not None

    intent, answer, matched = await hooks.db_work(work)
    log.info("inbound_sms", source="twilio_sms", intent=str(intent), matched=matched)
    response = MessagingResponse()
    if answer and intent != ReplyIntent.OPT_OUT and not advanced_opt_out:
        response.message(answer)
    return twiml(str(response))


async def voice_gather(hooks: Hooks, request: Request) -> Response:
    form = await signed_form(hooks, request)
    sid, digits = need(form, "CallSid"), form.get("Digits", "").strip()

    def work(db: Session):
        message = _locked(db, select(Message).where(Message.provider_ref == sid))
        if message is None:
            return None, "en", None
        if digits in ("1", "2"):
            reply = record_reply(db, hooks.config, "voice", message.address, digits, hooks.clock.now())
            return reply.intent, message.language, None
        return ReplyIntent.UNKNOWN, message.language, _said_again(db, hooks, message) if digits == "3" else None

    intent, language, again = await hooks.db_work(work)
    log.info("voice_keypress", source="twilio_voice", intent=str(intent) if intent else "none",
             matched=intent is not None)
    base = language.split("-")[0].lower()
    tag, voice, prompt = VOICES.get(base, VOICES["en"])
    said = SAID.get(base, SAID["en"])
    response = VoiceResponse()
    if intent is None:
        response.hangup()
    elif digits in ("1", "2"):
        response.say(said[0] if digits == "1" else said[1], language=tag, voice=voice)
        response.hangup()
    else:  # 3: the message again, then the prompt (a key may cut in); a wrong key: the prompt again
        gather = response.gather(num_digits=1, action=hooks.public_url + GATHER_PATH, method="POST", timeout=6)
        if again:
            gather.say(again, language=tag, voice=voice)
        gather.say(prompt, language=tag, voice=voice)
        response.hangup()
    return twiml(str(response))


def _said_again(db: Session, hooks: Hooks, message: Message) -> str | None:
    """The call's message, rendered again as dispatch rendered it (the text is not stored: it is rebuilt
    from the mirror, in the language the call was made in); None when its kind or patient is gone."""
    kind = hooks.kinds.get(message.kind)
    facts = gather_facts(db, message, kind)
    if kind is None or facts.patient is None:
        return None
    return compose(hooks.config, kind, message, facts).body


def _locked(db: Session, query, *, every: bool = False):
    """Run ``query`` taking row locks on PostgreSQL, so concurrent callbacks for one message queue up."""
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.exec(query).all() if every else db.exec(query).first()
