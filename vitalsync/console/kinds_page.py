"""The Message kinds page (admin and front desk): what each enabled kind does, read-only.

Each kind's trigger, offsets, channels (in fallback order), filters and rules, and every template
(each channel, each language) rendered for a synthetic sample patient (:mod:`vitalsync.rules.sample`),
so the front desk can read what patients get without a real patient's details on the screen. The
kinds are read from their files on each visit: the page shows what the next start will load.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import Response
from starlette.routing import Route

from vitalsync.console.web import Page, guarded
from vitalsync.core.errors import ConfigError
from vitalsync.rules.kinds import load_kinds
from vitalsync.rules.sample import samples

TRIGGERS = {
    "appointment_start": "the appointment's start", "appointment_end": "the appointment's end",
    "appointment_moved": "the appointment being moved", "appointment_cancelled": "the appointment being cancelled",
    "recall_due": "the recall's due date", "pickup_ready": "the order being ready",
    "manual": "a group send started by staff",
}


def offset_text(offset: timedelta) -> str:
    """ "2 days before", "3 hours before", "30 minutes after", "at the moment itself"."""
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "at the moment itself"
    size = abs(minutes)
    for unit, length in (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60), ("minute", 1)):
        if size % length == 0:
            count = size // length
            return f"{count} {unit}{'' if count == 1 else 's'} {'before' if minutes < 0 else 'after'}"
    raise AssertionError("unreachable: every offset is a whole number of minutes")


@guarded("kinds")
def kinds_page(page: Page) -> Response:
    config = page.console.config
    folder = config.message_kinds.directory and config.relative(config.message_kinds.directory)
    try:
        kinds = load_kinds(config.message_kinds.enabled, folder)
    except ConfigError as exc:  # a kind file edited since the start: say what is wrong, as `check` would
        return page.render("kinds.html", kinds=[], problems=str(exc).splitlines(), status=200)
    shown = [{"kind": kind, "trigger": TRIGGERS[kind.trigger.value], "offsets": [offset_text(o) for o in kind.offsets],
              "late_grace": offset_text(kind.late_grace).removesuffix(" after"),
              "samples": samples(kind, config.clinic.name, config.clinic.phone, page.console.zone, page.now)}
             for kind in kinds.values()]
    return page.render("kinds.html", kinds=shown, problems=[])


ROUTES = [Route("/kinds", kinds_page)]
