"""The pages: Today, Message log (+ CSV), Report, Needs attention, Queue, Patient, Sync, Users.

Each handler gets a :class:`~vitalsync.console.web.Page` (user, session, form) and returns a
response; reads are paginated queries, changes are POSTs that land in the audit log. Typed values
(days, times, page numbers) are read with :mod:`vitalsync.console.values`, whose BadValue is a 400.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timedelta

from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vitalsync.console import accounts, queries, values
from vitalsync.console.access import may_see_patient
from vitalsync.console.attention import NotAnItem, attention, mark_handled
from vitalsync.console.tables import ALERT_EVENTS, ANY_KIND, ROLES, AlertChoice, StaffUser
from vitalsync.console.timeline import patient_page
from vitalsync.console.today import day_bounds, today
from vitalsync.console.web import Page, guarded
from vitalsync.core.connector_config import writes_back
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import Channel, MessageStatus
from vitalsync.mirror.tables import Patient
from vitalsync.status.writeback import retry_held, write_back_state

FILTER_KEYS = ("kind", "status", "channel", "since", "until", "patient")


#: a cell a spreadsheet would take for a formula (OWASP "CSV injection"): written with a leading '
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = " ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


def _filter(page: Page, given, *, status: bool = True) -> tuple[queries.Filter, dict]:
    """The Filter of a form or query string (dates are clinic days, 'until' inclusive) and the values to echo."""
    echo = {key: (given.get(key) or "").strip() for key in FILTER_KEYS}
    since, until = values.day(echo["since"], "since"), values.day(echo["until"], "until")
    scope = page.scope
    where = queries.Filter(
        kind=echo["kind"] or None, status=(echo["status"] or None) if status else None, channel=echo["channel"] or None,
        patient=echo["patient"] or None, since=day_bounds(since, page.console.zone)[0] if since else None,
        until=day_bounds(until, page.console.zone)[1] if until else None,
        locations=list(scope.locations), provider=scope.provider)
    return where, echo


def _names(page: Page, keys) -> dict[str, str]:
    keys = sorted(set(keys))
    with session(page.console.engine) as db:
        rows = db.exec(select(Patient.key, Patient.first_name, Patient.last_name).where(col(Patient.key).in_(keys))).all() if keys else []
    return {key: f"{first} {last}" for key, first, last in rows}


def _choices(page: Page) -> dict:
    return {"kinds": sorted(page.console.config.message_kinds.enabled), "statuses": [s.value for s in MessageStatus],
            "channels": [c.value for c in Channel]}


@guarded("today")
def today_page(page: Page) -> Response:
    local_today = page.now.astimezone(page.console.zone).date()
    day = values.day(page.query.get("day"), "day") or local_today
    groups = today(page.console.engine, day, page.console.zone, page.scope)
    counts: dict[str, int] = {}
    for group in groups:
        for appointment in group["appointments"]:
            counts[appointment["state"]] = counts.get(appointment["state"], 0) + 1
    page.audit("view_today", detail=day.isoformat())
    return page.render("today.html", day=day, groups=groups, counts=counts, previous=day - timedelta(days=1),
                       next=day + timedelta(days=1), is_today=day == local_today)


@guarded("log")
def log_page(page: Page) -> Response:
    where, echo = _filter(page, page.query)
    size = page.console.config.console.page_size
    number = values.page_number(page.query.get("page"))
    total = queries.count(page.console.engine, where)
    rows = queries.message_log(page.console.engine, where, history=False, limit=size, offset=(number - 1) * size,
                               newest_first=True)
    page.audit("view_log", target=f"patient:{echo['patient']}" if echo["patient"] else "", detail=_described(echo))
    return page.render("log.html", rows=rows, names=_names(page, (r["patient"] for r in rows)), echo=echo, total=total,
                       number=number, pages=max(1, -(-total // size)), query=_query(echo), **_choices(page))


@guarded("log")
def log_csv(page: Page) -> Response:
    where, echo = _filter(page, page.query)
    rows = queries.message_log(page.console.engine, where, history=False, newest_first=True)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(queries.LOG_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in queries.LOG_COLUMNS])
    page.audit("export_log", target=f"patient:{echo['patient']}" if echo["patient"] else "",
               detail=f"{len(rows)} rows; {_described(echo)}")
    stamp = page.now.astimezone(page.console.zone).strftime("%Y%m%d-%H%M")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="vitalsync-log-{stamp}.csv"'})


@guarded("report")
def report_page(page: Page) -> Response:
    given = dict(page.query)
    if "since" not in given:
        given["since"] = (page.now.astimezone(page.console.zone).date() - timedelta(days=30)).isoformat()
    where, echo = _filter(page, given, status=False)
    rows = queries.report(page.console.engine, where)
    return page.render("report.html", rows=rows, echo=echo)


@guarded("attention")
def attention_page(page: Page) -> Response:
    handled = page.query.get("handled") == "1"
    items = attention(page.console.engine, page.now, page.scope, handled=handled)
    page.audit("view_attention", detail=f"{len(items)} items")
    return page.render("attention.html", items=items, handled=handled,
                       names=_names(page, (i["patient"] for i in items if i["patient"])))


@guarded("attention")
def attention_mark(page: Page) -> Response:
    item = page.form.get("item", "")
    try:
        mark_handled(page.console.engine, item, page.user, page.now, page.scope)
    except ValueError:
        return Response("Not an attention item.", status_code=400)
    except NotAnItem:
        page.audit("refused", target=item)
        return Response("No such item on your list.", status_code=404)
    page.audit("mark_handled", target=item)
    return RedirectResponse("/attention", status_code=303)


@guarded("queue")
def queue_page(page: Page) -> Response:
    where, echo = _filter(page, page.query, status=False)
    where.status = MessageStatus.NOT_SENT.value
    size = page.console.config.console.page_size
    number = values.page_number(page.query.get("page"))
    total = queries.count(page.console.engine, where)
    rows = queries.message_log(page.console.engine, where, history=False, limit=size, offset=(number - 1) * size)
    page.audit("view_queue", target=f"patient:{echo['patient']}" if echo["patient"] else "", detail=_described(echo))
    return page.render("queue.html", rows=rows, names=_names(page, (r["patient"] for r in rows)), echo=echo, total=total,
                       number=number, pages=max(1, -(-total // size)), query=_query(echo), done=_done(page.query.get("done")),
                       **_choices(page))


def _done(text: str | None) -> tuple[str, str] | None:
    """The notice after a change (``cancel:3``, set by queue_apply's redirect); anything else shows none."""
    verb, _, count = (text or "").partition(":")
    return (verb, count) if verb in ("cancel", "move") and count.isascii() and count.isdigit() else None


def _action(page: Page) -> tuple[str, datetime | None] | None:
    action = page.form.get("action")
    if action == "cancel":
        return "cancel", None
    if action == "move":
        to = values.moment(page.form.get("move_to"), "move_to", page.console.zone)
        return ("move", to) if to else None
    return None


def _queue_change(page: Page):
    """The form's filter and action and how many pending messages they reach now; a 400 response when the action is invalid."""
    where, echo = _filter(page, page.form, status=False)
    action = _action(page)
    if action is None:
        return Response("Choose cancel, or move with a valid time.", status_code=400)
    affected = queries.count(page.console.engine, replace(where, status=MessageStatus.NOT_SENT.value))
    return where, echo, action, affected


def _queue_preview(page: Page, echo, action, affected: int, *, changed: bool) -> Response:
    return page.render("queue_preview.html", status=409 if changed else 200, echo=echo, action=action[0],
                       move_to=page.form.get("move_to", ""), to=action[1], affected=affected, changed=changed)


@guarded("queue")
def queue_preview(page: Page) -> Response:
    change = _queue_change(page)
    if isinstance(change, Response):
        return change
    _where, echo, action, affected = change
    return _queue_preview(page, echo, action, affected, changed=False)


@guarded("queue")
def queue_apply(page: Page) -> Response:
    change = _queue_change(page)
    if isinstance(change, Response):
        return change
    where, echo, (verb, to), affected = change
    if page.form.get("expected") != str(affected):  # messages were sent or planned since the preview
        return _queue_preview(page, echo, (verb, to), affected, changed=True)
    if verb == "cancel":
        done = queries.cancel_pending(page.console.engine, where, page.now, f"{page.user.name} (console)")
    else:
        done = queries.move_pending(page.console.engine, where, to)
    page.audit(f"{verb}_queue", target=f"patient:{echo['patient']}" if echo["patient"] else "",
               detail=f"{done} messages; {_described(echo)}")
    return RedirectResponse(f"/queue?{_query(echo)}&done={verb}:{done}", status_code=303)


@guarded("patient")
def patient_view(page: Page) -> Response:
    key = page.request.path_params["key"]
    if not may_see_patient(page.console.engine, page.scope, key):
        page.audit("refused", target=f"patient:{key}")
        return page.render("denied.html", status=403)
    data = patient_page(page.console.engine, key)
    if data is None:
        return page.render("denied.html", status=404, missing=True)
    page.audit("view_patient", target=f"patient:{key}")
    return page.render("patient.html", **data)


@guarded("sync")
def sync_page(page: Page) -> Response:
    engine = page.console.engine
    return page.render("sync.html", runs=queries.sync_runs(engine, 30), writes=write_back_state(engine),
                       write_back=writes_back(page.console.config.connector), released=page.query.get("released", ""))


@guarded("sync")
def sync_write_back_retry(page: Page) -> Response:
    """Release the held and failed write-backs once a person fixed their cause (the API key, say)."""
    released = retry_held(page.console.engine, page.now)
    page.audit("retry_write_backs", detail=f"{released} write-backs")
    return RedirectResponse(f"/sync?released={released}", status_code=303)


@guarded("users")
def users_page(page: Page) -> Response:
    return page.render("users.html", users=accounts.list_users(page.console.engine), roles=ROLES,
                       error=page.query.get("error", ""))


@guarded("users")
def users_add(page: Page) -> Response:
    form = page.form
    try:
        user = accounts.add_user(page.console.engine, form.get("name", "").strip(), form.get("role", ""),
                                 form.get("password", ""), page.now, provider_key=form.get("provider_key") or None,
                                 locations=form.get("locations", "").split(), email=form.get("email", "").strip())
    except PersonMustAct as exc:
        return page.render("users.html", status=400, users=accounts.list_users(page.console.engine), roles=ROLES,
                           error=str(exc))
    page.audit("add_user", target=f"user:{user.id}", detail=user.role)
    return RedirectResponse("/users", status_code=303)


@guarded("users")
def users_disable(page: Page) -> Response:
    try:
        user = accounts.disable_user(page.console.engine, page.form.get("name", ""))
    except PersonMustAct as exc:
        return Response(str(exc), status_code=400)
    page.audit("disable_user", target=f"user:{user.id}")
    return RedirectResponse("/users", status_code=303)


@guarded("alerts")
def alerts_page(page: Page) -> Response:
    with session(page.console.engine) as db:
        chosen = {(c.event, c.kind) for c in db.exec(select(AlertChoice).where(AlertChoice.user_id == page.user.id))}
    return page.render("alerts.html", chosen=chosen, events=ALERT_EVENTS, any_kind=ANY_KIND,
                       kinds=sorted(page.console.config.message_kinds.enabled), saved=page.query.get("saved") == "1")


@guarded("alerts")
def alerts_save(page: Page) -> Response:
    """Replace the user's choices with the ticked boxes (``event|kind``); unknown events are ignored."""
    kinds = set(page.console.config.message_kinds.enabled) | {ANY_KIND}
    ticked = {tuple(value.split("|", 1)) for key, value in page.form_items if key == "choice" and "|" in value}
    ticked = {(event, kind) for event, kind in ticked if event in ALERT_EVENTS and kind in kinds}
    with session(page.console.engine) as db:
        for old in db.exec(select(AlertChoice).where(AlertChoice.user_id == page.user.id)):
            db.delete(old)
        db.flush()
        db.add_all(AlertChoice(user_id=page.user.id, event=event, kind=kind) for event, kind in ticked)
        user = db.get(StaffUser, page.user.id)
        user.daily_summary = page.form.get("daily_summary") == "1"
        user.email = page.form.get("email", "").strip()
        db.add(user)
        db.commit()
    page.audit("set_alerts", target=f"user:{page.user.id}", detail=f"{len(ticked)} choices")
    return RedirectResponse("/alerts?saved=1", status_code=303)


def _described(echo: dict) -> str:
    """The filters for the audit log; the patient is its target, by key."""
    return " ".join(f"{key}={value}" for key, value in echo.items() if value and key != "patient")


def _query(echo: dict) -> str:
    from urllib.parse import urlencode
    return urlencode({k: v for k, v in echo.items() if v})


ROUTES = [
    Route("/today", today_page),
    Route("/log", log_page),
    Route("/log.csv", log_csv),
    Route("/report", report_page),
    Route("/attention", attention_page),
    Route("/attention/handled", attention_mark, methods=["POST"]),
    Route("/queue", queue_page),
    Route("/queue/preview", queue_preview, methods=["POST"]),
    Route("/queue/apply", queue_apply, methods=["POST"]),
    Route("/patient/{key:path}", patient_view),
    Route("/sync", sync_page),
    Route("/sync/write-back/retry", sync_write_back_retry, methods=["POST"]),
    Route("/users", users_page),
    Route("/users/add", users_add, methods=["POST"]),
    Route("/users/disable", users_disable, methods=["POST"]),
    Route("/alerts", alerts_page),
    Route("/alerts", alerts_save, methods=["POST"]),
]
