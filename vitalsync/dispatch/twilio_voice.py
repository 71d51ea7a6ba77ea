"""Twilio voice calls with inline TwiML: the message read in the patient's language, then a keypress.

Answering machines: the call asks for ``MachineDetection=DetectMessageEnd`` with synchronous AMD
(``AsyncAmd`` left off), so Twilio runs the TwiML only once it knows who answered and, for a machine,
after the greeting's beep. The message is said once *before* the ``<Gather>``, so a voicemail holds
the whole message. Limitation of inline TwiML: the same document serves people and machines, so
the voicemail also records the keypress prompt (nobody presses; the Gather times out and the call
hangs up). Leaving the prompt out for machines needs TwiML served from a URL, where the webhook reads
``AnsweredBy`` and answers ``call_twiml(..., machine=True)``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone

from twilio.base import values
from twilio.twiml.voice_response import VoiceResponse

from vitalsync.dispatch.pace import Pacer
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.twilio_sms import connect, translated

VOICES = {  # language: (TwiML language, voice, keypress prompt)
    "en": ("en-US", "Polly.Joanna", "Press 1 to confirm, 2 to decline, or 3 to hear this message again."),
    "es": ("es-US", "Polly.Lupe", "Marque 1 para confirmar, 2 si no puede venir, o 3 para escuchar este mensaje otra vez."),
}
EVENTS = ["initiated", "ringing", "answered", "completed"]


def call_twiml(body: str, language: str, gather_url: str | None, *, machine: bool = False) -> str:
    """The call's TwiML; VoiceResponse escapes the text for XML. ``gather_url=None``: no reply asked."""
    tag, voice, prompt = VOICES.get(language.split("-")[0].lower(), VOICES["en"])
    response = VoiceResponse()
    response.say(body, language=tag, voice=voice)
    if gather_url and not machine:
        gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=6)
        gather.say(prompt, language=tag, voice=voice)
    response.hangup()
    return str(response)


class TwilioVoice:
    channels = frozenset({"voice"})

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str, gather_url: str,
                 status_callback: str | None = None, base_url: str = "https://api.twilio.com",
                 timeout: float = 10.0, machine_detection: str | None = "DetectMessageEnd",
                 pacer: Pacer | None = None) -> None:
        self.from_number, self.gather_url, self.status_callback = from_number, gather_url, status_callback
        self.pacer = pacer  #: calls per second
        self.machine_detection = machine_detection
        self._client, self._http = connect(account_sid, auth_token, base_url, timeout)

    def send(self, outgoing: Outgoing) -> str:
        twiml = call_twiml(outgoing.body, outgoing.language, self.gather_url if outgoing.asks_reply else None)
        if self.pacer:
            self.pacer.wait()
        with translated(self._http):
            call = self._client.calls.create(
                to=outgoing.to, from_=self.from_number, twiml=twiml,
                status_callback=self.status_callback or values.unset,
                status_callback_event=EVENTS if self.status_callback else values.unset,
                machine_detection=self.machine_detection or values.unset)
        return call.sid

    def find(self, outgoing: Outgoing, since: datetime, *, exclude: Collection[str] = ()) -> str | None:
        """The SID of a call from our number to ``outgoing.to`` started since ``since``, or None.

        Twilio's call list filters on To, From and StartTime (from midnight UTC of ``since``'s day, as
        for messages). A call resource holds no TwiML, so the text cannot be compared: the oldest call
        that no other message owns (``exclude``) is taken for this one. A call Twilio took but has not
        started yet has no StartTime; the reconciler's settle time covers that. Failures raise the
        usual send errors: a lookup that did not answer proves nothing.
        """
        day = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        with translated(self._http):
            calls = [call for call in self._client.calls.stream(to=outgoing.to, from_=self.from_number,
                                                                 start_time_after=day, page_size=100)
                     if call.sid not in exclude]
        calls.sort(key=lambda call: call.start_time or call.date_created or day)
        return calls[0].sid if calls else None
