"""A message's text, rendered from the mirror as it is now: what dispatch sends, and what a call repeats."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from vitalsync.core.config import Config
from vitalsync.core.vocab import Channel
from vitalsync.dispatch.recheck import Facts
from vitalsync.queue.tables import Message
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.render import Rendered, build_context, render


def compose(config: Config, kind: MessageKind, message: Message, facts: Facts) -> Rendered:
    """``message`` rendered on its channel in its language, times in its location's zone (else the clinic's)."""
    location = facts.members[0][1] if facts.members else facts.pickup_location
    tz = _zone(location.timezone if location else None) or _zone(config.schedule.timezone)
    context = build_context(
        clinic_name=config.clinic.name, clinic_phone=config.clinic.phone, patient=facts.patient,
        language=message.language, tz=tz, appointments=facts.members, recall=facts.recall,
        pickup=facts.pickup, pickup_location=facts.pickup_location)
    return render(kind, Channel(message.channel), message.language, context)


def _zone(name: str | None) -> ZoneInfo | None:
    return ZoneInfo(name) if name else None
