"""Twilio's webhooks: signed status callbacks, inbound texts and voice keypresses into the lifecycle.

Every request is checked against X-Twilio-Signature with the library's own RequestValidator over the
*public* URL (what Twilio called, not what uvicorn saw behind a proxy) and every form parameter.
Anything unsigned, forged or unreadable is refused with 403 before a row is read.

Replies, keypresses and delivery reports go through the inbox (:mod:`vitalsync.status.inbox`): stored
under their provider id (MessageSid; CallSid and status or keys) before the answer, acted on once. The
``process_*`` functions act on a stored event; the daemon's inbox step calls them for what is left.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime
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
from vitalsync.status.deliveries import Delivery, record_deliveries
from vitalsync.status.inbox import Arrival, Processed, Taken
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
    take: object = field(default=None)  #: take(arrival, process) → Taken: stored in the inbox and processed

    def __post_init__(self) -> None:
        self.public_url = self.public_url.rstrip("/")
        self.validator = RequestValidator(self.twilio_auth_token) if self.twilio_auth_token else None


async def signed_form(hooks: Hooks, request: Request) -> tuple[MultiDict, str]:
    """The request's form parameters and raw body, once its X-Twilio-Signature is verified; else
    :class:`Refused` (403)."""
    if hooks.validator is None:
        raise Refused(403)
    if too_long(request, MAX_FORM):
        raise Refused(403)
    raw = await request.body()
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or len(raw) > MAX_FORM:
        raise Refused(403)
    try:
        text = raw.decode("utf-8")
        form = _form(text)
        url = hooks.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # the exact public URL first (one HMAC, the usual case); validate() also tries the URL with
        # and without its port, as Twilio's back end signs both ways, and checks a JSON body's hash
        valid = (hmac.compare_digest(hooks.validator.compute_signature(url, form), signature)
                 or hooks.validator.validate(url, form, signature))
    except (UnicodeError, ValueError, TypeError):
        raise Refused(403) from None
    if not valid:
        raise Refused(403)
    return form, text


def _form(payload: str) -> MultiDict:
    return MultiDict(parse_qsl(payload, keep_blank_values=True, errors="strict"))


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


def sms_delivery(form: MultiDict) -> Delivery | None:
    """A text's status callback as a delivery report; None for a status that is no news (queued, sent …)."""
    sid, status = need(form, "MessageSid"), need(form, "MessageStatus").lower()
    if status not in SMS_DELIVERED | SMS_NOT_DELIVERED:
        return None
    code = "".join(ch for ch in form.get("ErrorCode", "") if ch.isdigit())[:8]  # digits only: no PHI in the detail
    detail = "" if status in SMS_DELIVERED else f"twilio {status}" + (f" {code}" if code else "")
    return Delivery(sid, status in SMS_DELIVERED, detail)


def voice_delivery(form: MultiDict) -> Delivery | None:
    """A call's status callback as a delivery report; None while the call is under way."""
    sid, status = need(form, "CallSid"), need(form, "CallStatus").lower()
    if status == "completed":
        delivered = form.get("AnsweredBy", "").lower() != "fax"  # a person, a voicemail (machine_*), or AMD off / unsure
        return Delivery(sid, delivered, "" if delivered else "call answered by fax")
    if status in CALL_NOT_ANSWERED:
        return Delivery(sid, False, f"call {status}")
    return None


async def sms_status(hooks: Hooks, request: Request) -> Response:
    form, raw = await signed_form(hooks, request)
    delivery = sms_delivery(form)
    if delivery is not None:
        event_id = f"{delivery.reference}:{form['MessageStatus'].lower()}"
        await _delivery(hooks, "twilio_sms", replace(delivery, arrival=Arrival(
            "twilio", "sms_status", event_id, raw, reference=delivery.reference)))
    return Response(status_code=200)


async def voice_status(hooks: Hooks, request: Request) -> Response:
    form, raw = await signed_form(hooks, request)
    delivery = voice_delivery(form)
    if delivery is not None:
        event_id = f"{delivery.reference}:{form['CallStatus'].lower()}"
        await _delivery(hooks, "twilio_voice", replace(delivery, arrival=Arrival(
            "twilio", "voice_status", event_id, raw, reference=delivery.reference)))
    return Response(status_code=200)


async def _delivery(hooks: Hooks, source: str, delivery: Delivery) -> None:
    # the writer logs each group it commits; a line per callback only for a message not known (yet)
    if not await hooks.deliveries.record(delivery):
        log.info("delivery_unmatched", source=source)


def process_sms_status(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed | None:
    """The inbox step's processor for a stored text status callback; None while its message is unknown.

    ``context`` has the ``config`` and the message ``kinds`` (the webhooks' Hooks, the daemon's Runtime)."""
    return _process_delivery(db, context, sms_delivery(_form(arrival.payload)), now, "twilio_sms")


def process_voice_status(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed | None:
    return _process_delivery(db, context, voice_delivery(_form(arrival.payload)), now, "twilio_voice")


def _process_delivery(db: Session, context, delivery: Delivery | None, now: datetime, source: str) -> Processed | None:
    if delivery is None:
        return Processed("delivery_ignored", {"source": source})
    if not record_deliveries(db, [delivery], now, context.kinds)[0]:
        return None
    return Processed("delivery_recorded", {"source": source})


def process_sms_inbound(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed:
    """A patient's text: a Reply, acted on (:func:`~vitalsync.status.record.record_reply`)."""
    form = _form(arrival.payload)
    address = need(form, "From")
    _locked(db, select(Message).where(Message.address == address, Message.sent_at >= received_at - REPLY_WINDOW)
            .order_by(Message.id), every=True)
    reply = record_reply(db, context.config, "sms", address, form.get("Body", ""), received_at)
    return Processed("reply_recorded", _reply_fields(reply, "twilio_sms"), reply)


def process_voice_gather(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed | None:
    """Keys 1 or 2 pressed during a call: the call's message answered; None while the call's id is unknown."""
    form = _form(arrival.payload)
    message = _locked(db, select(Message).where(Message.provider_ref == need(form, "CallSid")))
    if message is None:
        return None
    reply = record_reply(db, context.config, "voice", message.address, form.get("Digits", "").strip(), received_at)
    return Processed("reply_recorded", _reply_fields(reply, "twilio_voice"), message.language)


def _reply_fields(reply, source: str) -> dict:
    return {"source": source, "intent": str(reply.intent), "matched": reply.message_id is not None,
            "needs_staff": reply.needs_staff}


def logged(taken: Taken, source: str, kind: str) -> Taken:
    """Log what happened to an event, once it is committed."""
    if taken.processed is not None:
        log.info(taken.processed.event, **taken.processed.fields)
    else:
        log.info(f"inbox_{taken.state}", source=source, kind=kind)
    return taken


async def sms_inbound(hooks: Hooks, request: Request) -> Response:
    form, raw = await signed_form(hooks, request)
    need(form, "From")
    arrival = Arrival("twilio", "sms_inbound", need(form, "MessageSid"), raw)
    taken = logged(await hooks.take(arrival, process_sms_inbound), "twilio_sms", arrival.kind)
    advanced_opt_out = form.get("OptOutType", "").upper()  # Twilio already answered STOP/START/HELP itself
    response = MessagingResponse()
    reply = taken.processed.value if taken.processed else None  # a replay or a pending reply: no second answer
    if reply is not None and reply.answer and reply.intent != ReplyIntent.OPT_OUT and not advanced_opt_out:
        response.message(reply.answer)
    return twiml(str(response))


async def voice_gather(hooks: Hooks, request: Request) -> Response:
    form, raw = await signed_form(hooks, request)
    sid, digits = need(form, "CallSid"), form.get("Digits", "").strip()
    language = again = None
    if digits in ("1", "2"):
        arrival = Arrival("twilio", "voice_gather", f"{sid}:{digits}", raw, reference=sid)
        taken = logged(await hooks.take(arrival, process_voice_gather), "twilio_voice", arrival.kind)
        language = taken.processed.value if taken.processed else None
    if language is None:  # another key, a replayed 1 or 2, or a call not known (yet)
        def look(db: Session):
            message = db.exec(select(Message).where(Message.provider_ref == sid)).first()
            if message is None:
                return None, None
            return message.language, _said_again(db, hooks, message) if digits == "3" else None

        language, again = await hooks.db_work(look)
    if digits not in ("1", "2"):
        log.info("voice_keypress", source="twilio_voice", intent=str(ReplyIntent.UNKNOWN), matched=language is not None)
    base = (language or "en").split("-")[0].lower()
    tag, voice, prompt = VOICES.get(base, VOICES["en"])
    said = SAID.get(base, SAID["en"])
    response = VoiceResponse()
    if language is None:
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
