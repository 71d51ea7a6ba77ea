"""The Send to a group page: a manual kind to the appointments of one day, previewed, then confirmed.

GET /send shows the form and the past group sends; POST /send/preview shows the count, why some
are skipped and three messages rendered; POST /send/apply queues them (the same functions as
``vitalsync send``) when the count is still the one the preview showed, and audits it by ids.
A location-bound account sends only to its own locations.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vitalsync.console.tables import StaffUser
from vitalsync.console.web import Page, guarded
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.mirror.tables import Appointment, Location, Provider
from vitalsync.queue import group_send
from vitalsync.queue.group_send import GroupFilter
from vitalsync.rules.kinds import MessageKind, load_kinds

FIELDS = ("kind", "day", "location", "provider", "type")


class Refused(Exception):
    """A form value the user may not send or that makes no sense; the message says which."""


def _kinds(page: Page) -> dict[str, MessageKind]:
    """The enabled kinds, loaded once per console (the daemon's are checked at start; these are the same files)."""
    console = page.console
    if getattr(console, "group_send_kinds", None) is None:
        folder = console.config.message_kinds.directory
        console.group_send_kinds = load_kinds(console.config.message_kinds.enabled,
                                              folder and console.config.relative(folder))
    return console.group_send_kinds


def _where(page: Page, values) -> tuple[GroupFilter, dict]:
    echo = {key: (values.get(key) or "").strip() for key in FIELDS}
    try:
        day = date.fromisoformat(echo["day"])
    except ValueError:
        raise Refused(f"{echo['day']!r} is not a date: pick the appointments' day") from None
    allowed = page.scope.locations
    if echo["location"] and allowed and echo["location"] not in allowed:
        raise Refused(f"your account cannot send to location {echo['location']!r}")
    locations = (echo["location"],) if echo["location"] else tuple(allowed)
    return GroupFilter(kind=echo["kind"], day=day, locations=locations, provider=echo["provider"],
                       appointment_type=echo["type"]), echo


def _form(page: Page, status: int = 200, error: str = "", echo: dict | None = None) -> Response:
    kinds = group_send.manual_kinds(_kinds(page))
    tomorrow = (page.now.astimezone(page.console.zone).date() + timedelta(days=1)).isoformat()
    echo = echo or {"kind": kinds[0] if kinds else "", "day": tomorrow, "location": "", "provider": "", "type": ""}
    allowed = page.scope.locations
    with session(page.console.engine) as db:
        locations = [(l.key, l.name) for l in db.exec(select(Location).order_by(Location.name))
                     if not allowed or l.key in allowed]
        providers = [(p.key, p.name) for p in db.exec(select(Provider).order_by(Provider.name))]
        types = sorted(t for t in db.exec(select(Appointment.type).distinct().where(
            Appointment.start >= page.now, Appointment.type != "")))
        past = group_send.history(page.console.engine)
        ids = [g.user_id for g in past if g.user_id]
        users = {key: name for key, name in db.exec(select(StaffUser.id, StaffUser.name).where(
            col(StaffUser.id).in_(ids)))} if ids else {}
    return page.render("send.html", status=status, error=error, echo=echo, kinds=kinds, locations=locations,
                       providers=providers, types=types, past=past, users=users, who=group_send.who,
                       done=page.query.get("done", ""), restricted=bool(allowed))


def _preview(page: Page, status: int = 200, changed: bool = False) -> Response:
    try:
        where, echo = _where(page, page.form)
        shown = group_send.preview(page.console.engine, _kinds(page), page.console.config, where, page.now)
    except (Refused, PersonMustAct) as exc:
        return _form(page, status=400, error=str(exc), echo={key: page.form.get(key, "") for key in FIELDS})
    return page.render("send_preview.html", status=status, shown=shown, echo=echo, changed=changed,
                       queued=len(shown.plan.messages), described=where.described())


@guarded("send")
def send_page(page: Page) -> Response:
    return _form(page)


@guarded("send")
def send_preview(page: Page) -> Response:
    return _preview(page)


@guarded("send")
def send_apply(page: Page) -> Response:
    try:
        where, _echo = _where(page, page.form)
        shown = group_send.preview(page.console.engine, _kinds(page), page.console.config, where, page.now)
    except (Refused, PersonMustAct) as exc:
        return _form(page, status=400, error=str(exc), echo={key: page.form.get(key, "") for key in FIELDS})
    if page.form.get("expected") != str(len(shown.plan.messages)):  # sent, synced or planned since the preview
        return _preview(page, status=409, changed=True)
    try:
        group, _plan = group_send.start(page.console.engine, _kinds(page), page.console.config, where, page.now,
                                        started_by="console", user_id=page.user.id)
    except RetryLater:  # another send queued some of these at the same moment: show what is left
        return _preview(page, status=409, changed=True)
    page.audit("group_send", target=f"group_send:{group.id}", detail=f"{group.queued} messages; {where.described()}")
    return RedirectResponse(f"/send?done={group.id}", status_code=303)


ROUTES = [
    Route("/send", send_page),
    Route("/send/preview", send_preview, methods=["POST"]),
    Route("/send/apply", send_apply, methods=["POST"]),
]
