"""Times for people: every time a person reads (the decision trace, the CLI's tables, the console,
alert emails) says which zone it is in.

    shown(at, ZoneInfo("America/Los_Angeles"))  ->  "2026-03-04 09:00 PST"
    shown(at)                                    ->  "2026-03-04 17:00 UTC"

The clinic's local time carries its zone's abbreviation (PST / PDT, EST / EDT; a zone without one,
such as America/Sao_Paulo, shows its offset: "-03"); without a zone it is UTC, labelled UTC. Machine
output (JSON, CSV) stays ISO 8601 UTC and does not come through here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

FORMAT = "%Y-%m-%d %H:%M"


def shown(at: datetime | str | None, zone: ZoneInfo | None = None, fmt: str = FORMAT) -> str:
    """``at`` in ``zone`` (UTC when None) as ``fmt`` followed by the zone's abbreviation; "" for None.

    ``at`` may be an aware datetime or an ISO 8601 string as the queries return them; a naive one is
    taken as UTC (the database's times are UTC)."""
    if at is None or at == "":
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    local = when.astimezone(zone or timezone.utc)
    return f"{local.strftime(fmt)} {local.tzname() or 'UTC'}"
