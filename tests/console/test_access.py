"""Who sees what: anonymous visitors only the login page; roles, providers and locations narrow
the rest; every form needs its CSRF token; wrong passwords lock an account."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from tests.console.conftest import PASSWORD, csrf_of, log_in
from vitalsync.console.tables import AuditEntry, StaffSession, StaffUser
from vitalsync.core.db import session

PAGES = ["/today", "/log", "/log.csv", "/report", "/attention", "/queue", "/send", "/sync", "/users", "/patient/1", "/kinds"]


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert "Doe" not in response.text


def test_the_front_door_leads_an_anonymous_visitor_to_the_login_page(client):
    page = client.get("/", follow_redirects=True)
    assert page.url.path == "/login" and 'type="password"' in page.text


def test_the_login_page_is_all_an_anonymous_visitor_sees(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text and "<nav>" not in page.text


def test_an_anonymous_post_is_refused(client):
    assert client.post("/queue/apply", data={"action": "cancel"}).status_code == 403


def test_a_login_sets_a_secure_http_only_same_site_session_cookie(client):
    response = log_in(client, "fran")
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("vs_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert client.get("/today").status_code == 200


def test_only_the_hash_of_the_session_token_is_stored(client, practice):
    log_in(client, "fran")
    token = client.cookies["vs_session"]
    with session(practice.engine) as db:
        stored = db.exec(select(StaffSession.token_hash)).all()
    assert stored and token not in stored


def test_a_provider_sees_their_own_patient_but_not_another_providers(as_user):
    client = as_user("nora")
    assert client.get("/patient/1").status_code == 200
    refused = client.get("/patient/3")
    assert refused.status_code == 403
    assert "Cal" not in refused.text


def test_a_provider_sees_only_their_own_appointments_today(as_user):
    today = as_user("nora").get("/today?day=2026-03-03").text
    assert "Ann Doe" in today and "Ben Doe" in today and "Cal Doe" not in today


def test_a_provider_cannot_open_the_queue(as_user):
    assert as_user("nora").get("/queue").status_code == 403


def test_a_provider_cannot_send_to_a_group(as_user):
    client = as_user("nora")
    assert client.get("/send").status_code == 403
    token = csrf_of(client.get("/today").text)
    refused = client.post("/send/apply", data={"csrf": token, "kind": "office_closed", "day": "2026-03-03", "expected": "2"})
    assert refused.status_code == 403


def test_a_location_bound_user_sees_only_that_location(as_user):
    client = as_user("upton")
    assert client.get("/patient/1").status_code == 403
    assert client.get("/patient/3").status_code == 200
    log = client.get("/log").text
    assert "Cal Doe" in log and "Ann Doe" not in log


def test_a_front_desk_user_cannot_manage_users(as_user):
    client = as_user("fran")
    assert client.get("/users").status_code == 403
    token = csrf_of(client.get("/today").text)
    refused = client.post("/users/add", data={"csrf": token, "name": "mallory", "role": "admin", "password": PASSWORD})
    assert refused.status_code == 403
    assert log_in(client, "mallory").status_code == 401


def test_an_admin_adds_and_disables_a_user(as_user, practice):
    client = as_user("ada")
    token = csrf_of(client.get("/users").text)
    assert client.post("/users/add", data={"csrf": token, "name": "newbie", "role": "front_desk",
                                           "password": PASSWORD}).status_code == 303
    assert client.post("/users/disable", data={"csrf": token, "name": "newbie"}).status_code == 303
    with session(practice.engine) as db:
        assert db.exec(select(StaffUser.active).where(StaffUser.name == "newbie")).one() is False
        actions = db.exec(select(AuditEntry.action)).all()
    assert "add_user" in actions and "disable_user" in actions


@pytest.mark.parametrize("path,data", [("/attention/handled", {"item": "message:1"}), ("/queue/apply", {"action": "cancel"}),
                                       ("/send/preview", {"kind": "office_closed", "day": "2026-03-03"}),
                                       ("/send/apply", {"kind": "office_closed", "day": "2026-03-03", "expected": "3"}),
                                       ("/users/add", {"name": "x", "role": "admin", "password": PASSWORD}),
                                       ("/logout", {})])
def test_a_form_posted_without_its_csrf_token_is_refused(as_user, path, data):
    client = as_user("ada")
    assert client.post(path, data=data).status_code == 403
    assert client.post(path, data={**data, "csrf": "forged"}).status_code == 403


def test_a_queue_cancel_without_csrf_changes_nothing(as_user):
    client = as_user("ada")
    before = client.get("/queue").text
    client.post("/queue/apply", data={"action": "cancel"})
    assert client.get("/queue").text.count('id="message-') == before.count('id="message-') > 0


def test_a_login_form_without_its_token_is_refused(client):
    assert client.post("/login", data={"name": "fran", "password": PASSWORD}).status_code == 403


def test_an_account_is_locked_after_repeated_wrong_passwords(client, practice):
    failures = practice.config.console.lockout_failures
    for _ in range(failures - 1):
        assert log_in(client, "fran", "wrong password!").status_code == 401
    locked = log_in(client, "fran", "wrong password!")
    assert locked.status_code == 403 and "locked" in locked.text
    assert log_in(client, "fran").status_code == 403  # even the right password, for now
    practice.clock.advance(timedelta(minutes=practice.config.console.lockout_minutes + 1))
    assert log_in(client, "fran").status_code == 303


def test_logins_from_one_address_are_rate_limited(client, practice):
    limit = practice.config.console.login_attempts_per_minute
    codes = [log_in(client, f"nobody{i}", "wrong password!").status_code for i in range(limit + 1)]
    assert codes[:limit] == [401] * limit and codes[-1] == 429


def test_a_disabled_users_session_ends(as_user, practice):
    from vitalsync.console.accounts import disable_user
    client = as_user("fran")
    disable_user(practice.engine, "fran")
    assert client.get("/today").status_code == 303


def test_viewing_a_patient_is_audited_without_patient_details(as_user, practice):
    as_user("fran").get("/patient/1")
    with session(practice.engine) as db:
        entries = db.exec(select(AuditEntry).where(AuditEntry.action == "view_patient")).all()
    assert [(e.target, e.user_id is not None) for e in entries] == [("patient:1", True)]
    assert all("Ann" not in e.detail + e.target for e in entries)


def test_the_queue_acts_only_on_the_count_its_preview_showed(as_user, practice):
    from vitalsync.console.queries import Filter, count
    client = as_user("fran")
    token = csrf_of(client.get("/queue").text)
    preview = client.post("/queue/preview", data={"csrf": token, "action": "cancel", "patient": "1"})
    shown = int(re.search(r'id="affected">(\d+)<', preview.text).group(1))
    assert shown == count(practice.engine, Filter(patient="1", status="not_sent")) > 0
    stale = client.post("/queue/apply", data={"csrf": token, "action": "cancel", "patient": "1", "expected": str(shown + 1)})
    assert stale.status_code == 409
    assert count(practice.engine, Filter(patient="1", status="not_sent")) == shown
    done = client.post("/queue/apply", data={"csrf": token, "action": "cancel", "patient": "1", "expected": str(shown)})
    assert done.status_code == 303 and done.headers["location"].endswith(f"done=cancel:{shown}")
    assert count(practice.engine, Filter(patient="1", status="not_sent")) == 0
    assert count(practice.engine, Filter(patient="2", status="not_sent")) > 0


def test_the_queue_moves_pending_messages_to_a_clinic_time(as_user, practice):
    from vitalsync.console.queries import Filter, pending
    client = as_user("fran")
    token = csrf_of(client.get("/queue").text)
    form = {"csrf": token, "action": "move", "move_to": "2026-03-02T15:30", "patient": "2"}
    shown = re.search(r'id="affected">(\d+)<', client.post("/queue/preview", data=form).text).group(1)
    assert client.post("/queue/apply", data={**form, "expected": shown}).status_code == 303
    moved = pending(practice.engine, Filter(patient="2"))
    assert len(moved) == int(shown) > 0
    assert {row["send_at"] for row in moved} == {"2026-03-02T20:30:00+00:00"}  # 15:30 in New York


def test_the_login_sends_back_only_to_our_own_pages(client):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        token = csrf_of(client.get("/login").text)
        response = client.post(f"/login?next={target}", data={"csrf": token, "name": "fran", "password": PASSWORD})
        assert response.headers["location"] == "/today"


# -- issue 12, point 6: only an item on the user's list can be marked handled --------------------------

def _reply_needing_staff(practice, patient: str) -> int:
    from vitalsync.core.vocab import MessageStatus
    from vitalsync.queue.outbox import transition
    from vitalsync.queue.tables import Message
    from vitalsync.status.record import record_reply
    from vitalsync.status.tables import Reply
    now = practice.clock.now()
    with session(practice.engine) as db:
        message = db.exec(select(Message).where(Message.patient_key == patient, Message.channel == "sms")).first()
        transition(db, message, MessageStatus.SENT, at=now, source="dispatch")
        message.sent_at, message.asks_reply = now, True
        db.add(message)
        record_reply(db, practice.config, "sms", message.address, "I have chest pain, call me", now)
        db.commit()
        return db.exec(select(Reply.id).where(Reply.patient_key == patient)).one()


def _marks(practice) -> set[str]:
    from vitalsync.console.tables import HandledMark
    with session(practice.engine) as db:
        return set(db.exec(select(HandledMark.item)))


def test_another_locations_item_cannot_be_marked_handled(as_user, practice):
    reply = _reply_needing_staff(practice, "1")  # patient 1: Main Street
    client = as_user("upton")  # Uptown only
    csrf = csrf_of(client.get("/attention").text)
    assert client.post("/attention/handled", data={"csrf": csrf, "item": f"reply:{reply}"}).status_code == 404
    assert _marks(practice) == set()
    [refused] = [e for e in _audit(practice) if e.action == "refused"]
    assert refused.target == f"reply:{reply}"


def test_an_item_that_does_not_exist_yet_cannot_be_pre_marked(as_user, practice):
    client = as_user("fran")
    csrf = csrf_of(client.get("/attention").text)
    for item in ("reply:4242", "message:4242", "message:1"):  # message 1 exists but was reached (or not sent)
        assert client.post("/attention/handled", data={"csrf": csrf, "item": item}).status_code == 404, item
    assert _marks(practice) == set()
    reply = _reply_needing_staff(practice, "1")
    assert client.post("/attention/handled", data={"csrf": csrf, "item": f"reply:{reply}"}).status_code == 303
    assert _marks(practice) == {f"reply:{reply}"}


def _audit(practice) -> list[AuditEntry]:
    with session(practice.engine) as db:
        return list(db.exec(select(AuditEntry)))


# -- issue 12, point 12 -----------------------------------------------------------------------------

def test_csv_cells_a_spreadsheet_would_run_are_quoted(as_user, practice):
    import csv
    import io

    from vitalsync.queue.tables import Message
    formulas = ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)"]
    with session(practice.engine) as db:
        messages = db.exec(select(Message).order_by(Message.id)).all()[:len(formulas)]
        for message, formula in zip(messages, formulas):
            message.reason = formula
            db.add(message)
        db.commit()
    rows = list(csv.DictReader(io.StringIO(as_user("fran").get("/log.csv").text)))
    reasons = {row["reason"] for row in rows}
    assert {"'" + formula for formula in formulas} <= reasons
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


def test_a_user_without_a_name_is_refused(as_user):
    client = as_user("ada")
    csrf = csrf_of(client.get("/users").text)
    response = client.post("/users/add", data={"csrf": csrf, "name": "   ", "role": "front_desk",
                                               "password": "a long enough password"})
    assert response.status_code == 400 and "needs a name" in response.text


def test_console_actions_record_the_client_address(as_user, practice):
    as_user("fran").get("/today")
    entries = _audit(practice)
    assert {e.action for e in entries} >= {"login", "view_today"}
    assert all(e.address == "testclient" for e in entries)  # starlette's TestClient's peer name
