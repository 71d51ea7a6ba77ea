"""The Send to a group page: preview (count, skipped, three examples), confirm with CSRF, the
count the preview showed, the audit log by ids, past sends listed; location-bound accounts send
only to their locations. SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlmodel import select

from tests.console.conftest import csrf_of
from vitalsync.console.queries import Filter, count, message_log
from vitalsync.console.tables import AuditEntry, StaffUser
from vitalsync.core.db import session
from vitalsync.queue.tables import GroupSend, Message

TUESDAY = {"kind": "office_closed", "day": "2026-03-03", "location": "", "provider": "", "type": ""}


def closed(practice) -> int:
    return count(practice.engine, Filter(kind="office_closed"))


def queued_in(html: str) -> int:
    return int(re.search(r'id="queued">(\d+)<', html).group(1))


def test_the_page_offers_the_manual_kinds_and_tomorrow(as_user):
    page = as_user("fran").get("/send")
    assert page.status_code == 200
    assert '<option value="office_closed" selected>' in page.text
    assert 'value="appointment_reminder"' not in page.text  # planned automatically, not sent by hand
    assert 'name="day" value="2026-03-03"' in page.text  # the clinic's tomorrow
    assert "No group send yet." in page.text


def test_a_preview_shows_the_count_and_three_messages_and_queues_nothing(as_user, practice):
    client = as_user("fran")
    token = csrf_of(client.get("/send").text)
    with session(practice.engine) as db:
        before = len(db.exec(select(Message.id)).all())
    preview = client.post("/send/preview", data={"csrf": token, **TUESDAY})
    assert preview.status_code == 200
    assert queued_in(preview.text) == 3
    assert preview.text.count('<figure class="example">') == 3
    assert "Test Dental: our Main Street office is closed on Tuesday, March 3. Ann, your 11:00 AM appointment" in preview.text
    with session(practice.engine) as db:
        assert len(db.exec(select(Message.id)).all()) == before
        assert db.exec(select(GroupSend)).all() == []


def test_confirming_queues_the_messages_records_the_send_and_audits_it_by_ids(as_user, practice):
    client = as_user("fran")
    token = csrf_of(client.get("/send").text)
    done = client.post("/send/apply", data={"csrf": token, **TUESDAY, "expected": "3"})
    assert done.status_code == 303 and done.headers["location"] == "/send?done=1"
    rows = message_log(practice.engine, Filter(kind="office_closed"))
    with session(practice.engine) as db:
        fran = db.exec(select(StaffUser.id).where(StaffUser.name == "fran")).one()
        group = db.exec(select(GroupSend)).one()
        [audit] = db.exec(select(AuditEntry).where(AuditEntry.action == "group_send")).all()
    assert (group.started_by, group.user_id, group.queued, group.matched) == ("console", fran, 3, 3)
    assert {r["history"][0]["detail"] for r in rows} == {f"group send 1 started by console user {fran}"}
    assert (audit.user_id, audit.target) == (fran, "group_send:1")
    assert audit.detail == "3 messages; kind=office_closed date=2026-03-03"
    page = client.get("/send?done=1").text
    assert "Group send 1 queued" in page
    listed = re.search(r'<tr id="group-send-1">(.*?)</tr>', page, re.S).group(1)
    assert "fran" in listed and "office closed" in listed and "2026-03-03" in listed


def test_a_send_acts_only_on_the_count_its_preview_showed(as_user, practice):
    client = as_user("fran")
    token = csrf_of(client.get("/send").text)
    stale = client.post("/send/apply", data={"csrf": token, **TUESDAY, "expected": "4"})
    assert stale.status_code == 409 and queued_in(stale.text) == 3
    assert closed(practice) == 0


def test_sending_again_to_the_same_day_queues_nothing(as_user, practice):
    client = as_user("ada")
    token = csrf_of(client.get("/send").text)
    assert client.post("/send/apply", data={"csrf": token, **TUESDAY, "expected": "3"}).status_code == 303
    again = client.post("/send/preview", data={"csrf": token, **TUESDAY})
    assert queued_in(again.text) == 0 and 'id="already">3<' in again.text and "disabled" in again.text
    assert closed(practice) == 3


def test_a_location_bound_account_sends_only_to_its_locations(as_user, practice):
    client = as_user("upton")
    form = client.get("/send").text
    assert "Uptown" in form and "Main Street" not in form
    token = csrf_of(form)
    preview = client.post("/send/preview", data={"csrf": token, **TUESDAY})
    assert queued_in(preview.text) == 1 and "Cal" in preview.text and "Ann" not in preview.text
    refused = client.post("/send/apply", data={"csrf": token, **TUESDAY, "location": "main", "expected": "2"})
    assert refused.status_code == 400 and "cannot send to location &#39;main&#39;" in refused.text
    assert client.post("/send/apply", data={"csrf": token, **TUESDAY, "expected": "1"}).status_code == 303
    assert [r["patient"] for r in message_log(practice.engine, Filter(kind="office_closed"))] == ["3"]


def test_bad_values_are_a_400_with_the_reason(as_user, practice):
    client = as_user("fran")
    token = csrf_of(client.get("/send").text)
    for values, message in (({"day": "tomorrow"}, "is not a date"),
                            ({"kind": "appointment_reminder"}, "planned automatically"),
                            ({"kind": "nope"}, "unknown or disabled message kind"),
                            ({"provider": "west"}, "unknown provider &#39;west&#39;")):
        response = client.post("/send/preview", data={"csrf": token, **TUESDAY, **values})
        assert response.status_code == 400 and message in response.text, (values, response.text)
    assert closed(practice) == 0
