"""An in-memory sender: records what it sends and, when simulating, plays the patients.

Every outcome is a pure function of (seed, message key), so a demo run is the same every time:
most messages are delivered, some are not, a few are refused; delivered ones that ask for a reply
get confirmations, declines, reschedule requests, free text, HELP and STOP, in the patient's language,
and a few patients confirm and then change their mind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vitalsync.core.clock import Clock
from vitalsync.core.errors import AmbiguousSendError, PermanentSendError, TransientSendError
from vitalsync.dispatch.sender import Outgoing


@dataclass(frozen=True)
class Delivery:
    """The provider reports a message delivered or not."""

    reference: str
    delivered: bool
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class Inbound:
    """A patient's reply (text, email link or keypress), as the provider reports it."""

    channel: str
    address: str
    body: str
    at: datetime


REPLIES = {  # (share of delivered messages that ask a reply, answers in English, in Spanish)
    "confirm": (0.55, ["C", "Y", "yes", "1", "\N{THUMBS UP SIGN}", "Confirm", "Yes I'll be there"],
                ["SI", "Sí", "1", "Sí, ahí estaré"]),
    "decline": (0.12, ["N", "No", "2", "No, can't make it"], ["NO", "2", "No, no puedo ir"]),
    "reschedule": (0.05, ["R"], ["R"]),
    "free text": (0.04, ["Can I come later that day?", "running late, sorry"], ["¿Puedo ir más tarde?"]),
    "stop": (0.02, ["STOP"], ["STOP"]),
    "help": (0.01, ["HELP"], ["AYUDA"]),
}
#: a confirm, then hours later a decline: the changed mind the front desk must see (Needs attention)
CHANGED_MIND = (0.04, ("yes see you then", "No, can't make it after all. Sorry!"), ("Sí, nos vemos", "No, no puedo ir"))


@dataclass
class FakeSender:
    clock: Clock
    seed: int = 11
    simulate: bool = True
    channels: frozenset[str] = frozenset({"sms", "email", "voice"})
    sent: list[Outgoing] = field(default_factory=list)
    answers: list[tuple[str, str, str]] = field(default_factory=list)  #: (channel, to, text) sent back to replies
    _events: list[Delivery | Inbound] = field(default_factory=list)

    def send(self, outgoing: Outgoing) -> str:
        roll = self._roll(outgoing.key, "send")
        if self.simulate and roll < 0.015 and not any(s.key == outgoing.key for s in self.sent[-50:]):
            raise TransientSendError("simulated: connection refused before the request was sent")
        if self.simulate and roll > 0.985:
            raise PermanentSendError("simulated: the provider refused the recipient as invalid")
        self.sent.append(outgoing)
        reference = "FK" + hashlib.sha256(f"{outgoing.key}|{len(self.sent)}".encode()).hexdigest()[:30]
        if self.simulate:
            self._play(outgoing, reference)
        return reference

    def find(self, wanted: Outgoing, since: datetime, *, exclude=()) -> str | None:
        """The reference of a message handed over to ``wanted.to`` with exactly its body, or None.

        The fake keeps no send times, so ``since`` is not checked; the reference is the one
        :meth:`send` returned for it.
        """
        unowned = False
        for position, outgoing in enumerate(self.sent, start=1):
            reference = "FK" + hashlib.sha256(f"{outgoing.key}|{position}".encode()).hexdigest()[:30]
            if outgoing.to != wanted.to or reference in exclude:
                continue
            if outgoing.body == wanted.body:
                return reference
            unowned = True
        if unowned:  # as the real lookup: another text to this recipient proves nothing
            raise AmbiguousSendError("an unclaimed message to this recipient has another text")
        return None

    def answer(self, channel: str, to: str, text: str) -> None:
        self.answers.append((channel, to, text))

    def poll(self, until: datetime) -> list[Delivery | Inbound]:
        """Events due by ``until``, oldest first; they are handed out once."""
        due = sorted((e for e in self._events if e.at <= until), key=lambda e: e.at)
        self._events = [e for e in self._events if e.at > until]
        return due

    def _play(self, outgoing: Outgoing, reference: str) -> None:
        now, fate = self.clock.now(), self._roll(outgoing.key, "delivery")
        if fate > 0.97:
            return  # the carrier never reports back: the message stays 'sent'
        delivered = fate < 0.90
        detail = "" if delivered else "simulated: no answer / undelivered"
        self._events.append(Delivery(reference, delivered, now + timedelta(minutes=1), detail))
        if not (delivered and outgoing.asks_reply):
            return
        pick, floor = self._roll(outgoing.key, "reply"), 0.0
        for share, english, spanish in REPLIES.values():
            if pick < floor + share:
                words = spanish if outgoing.language == "es" else english
                body = words[int(self._roll(outgoing.key, "word") * len(words))]
                later = timedelta(minutes=5 + int(self._roll(outgoing.key, "delay") * 180))
                self._events.append(Inbound(outgoing.channel, outgoing.to, body, now + later))
                return
            floor += share
        share, english, spanish = CHANGED_MIND
        if pick < floor + share:
            confirm, decline = spanish if outgoing.language == "es" else english
            first = now + timedelta(minutes=5 + int(self._roll(outgoing.key, "delay") * 60))
            self._events.append(Inbound(outgoing.channel, outgoing.to, confirm, first))
            self._events.append(Inbound(outgoing.channel, outgoing.to, decline, first + timedelta(hours=2)))

    def _roll(self, key: str, purpose: str) -> float:
        digest = hashlib.sha256(f"{self.seed}|{key}|{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64
