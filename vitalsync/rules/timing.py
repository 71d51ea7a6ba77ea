"""When a wanted message goes out: its due time, moved into the allowed window."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from vitalsync.core.times import shown
from vitalsync.rules.schedule import Window

SLACK = timedelta(hours=1)


def send_time(due: datetime, deadline: datetime | None, now: datetime, grace: timedelta,
              window: Window, tz: ZoneInfo, catch_up_until: datetime | None = None) -> tuple[datetime | None, str]:
    """(send time, reason) or (None, why not).

    A message planned long after its due time is skipped rather than sent late in a burst (a
    reminder for two days ahead that the first sync finds one day ahead is not sent), unless its
    kind catches up: then it goes at the next allowed moment while ``now`` is before
    ``catch_up_until`` (its trigger: a recall not yet due). Outside the window it waits for the
    next allowed moment; when that would be after the deadline (the appointment), it goes at the
    last allowed moment before instead, if that is still ahead.
    """
    if deadline is not None and deadline <= now:
        return None, "the appointment has already started"
    late = due < now - grace
    caught_up = late and catch_up_until is not None and now < catch_up_until
    if late and not caught_up:
        return None, f"its send time {shown(due, window.tz)} had passed when it was first planned"
    start = max(due, now)
    when = window.next_allowed(start, tz)
    if when is not None and (deadline is None or when < deadline):
        reason = "due" if when == start else "deferred into the send window"
        if caught_up or due < now - SLACK:
            why = "its trigger is still ahead" if caught_up else "within the kind's late_grace"
            reason = (f"catching up: its send time {shown(due, window.tz)} had passed when it was first "
                      f"planned ({why}), so it goes at the next allowed time")
        return when, f"{reason}; send at {shown(when, window.tz)}"
    if deadline is not None:
        earlier = window.last_allowed_before(min(start, deadline), tz)
        if earlier is not None and earlier >= now - grace:
            # an hour's slack before the window closes, so a short backlog does not miss it
            if window.allows(earlier - SLACK, tz) and earlier - SLACK >= now:
                earlier -= SLACK
            when = max(earlier, now)
            return when, f"brought forward into the send window; send at {shown(when, window.tz)}"
    return None, "no allowed send time before the appointment (send window, quiet hours, holidays)"
