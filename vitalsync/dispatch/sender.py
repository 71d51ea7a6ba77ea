"""The sender seam: one small Protocol between the outbox and a provider.

A sender hands one message to its provider and returns the provider's reference, or raises one
of the :mod:`vitalsync.core.errors` send errors, which say what happens next: permanent (the
message fails), unreachable (the next channel is tried), transient (retried later, the request
never left) or ambiguous (reconciled, never resent blindly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    key: str  #: the idempotency key, passed to providers that accept one
    channel: str
    to: str
    body: str
    language: str = "en"
    subject: str | None = None
    html: str | None = None
    asks_reply: bool = False
    reply_to: str | None = None  #: email: where a reply goes (reply+TOKEN@reply_domain), when replies are read


class Sender(Protocol):
    channels: frozenset[str]

    def send(self, outgoing: Outgoing) -> str:
        """Hand the message over; return the provider's message reference."""
