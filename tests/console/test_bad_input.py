"""A value the console cannot use is a 400 with a message, never a 500 (issue 12, point 8): the
issue's cases, then every route gotten and posted with generated values (hypothesis)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.console.conftest import csrf_of


@pytest.mark.parametrize("path, field", [
    ("/log?page=99999999999999999999", "page"), ("/queue?page=-1", "page"), ("/log?page=abc", "page"),
    ("/today?day=9999-12-31", "day"), ("/today?day=tomorrow", "day"), ("/log?since=9999-12-31", "since"),
    ("/report?since=9999-12-31", "since"), ("/queue?until=0001-01-01", "until"), ("/log.csv?since=9999-12-31", "since"),
    ("/log?patient=%00", "patient"), ("/patient/1%00", "key"),
])
def test_a_value_the_page_cannot_use_is_a_400_naming_it(as_user, path, field):
    response = as_user("ada").get(path)
    assert response.status_code == 400, response.text
    assert field in response.text


@pytest.mark.parametrize("move_to", ["9999-12-31T23:59", "0001-01-01T00:00", "noon", ""])
def test_a_queue_move_to_a_time_it_cannot_use_is_a_400(as_user, move_to):
    client = as_user("ada")
    csrf = csrf_of(client.get("/queue").text)
    for path in ("/queue/preview", "/queue/apply"):
        response = client.post(path, data={"csrf": csrf, "action": "move", "move_to": move_to, "expected": "1"})
        assert response.status_code == 400, (path, response.text)


def test_a_nul_character_in_the_login_form_is_a_400(client):
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": "fran\x00", "password": "x"})
    assert response.status_code == 400


# -- every route, generated values --------------------------------------------------------------

NAMES = ["kind", "status", "channel", "since", "until", "patient", "page", "day", "handled", "action", "move_to",
         "expected", "item", "name", "role", "password", "provider_key", "locations", "email", "choice",
         "daily_summary", "next", "error", "saved", "done"]
SKIPPED = {"/logout"}  #: ends the session the test runs in

dates = st.dates().map(str) | st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "2026-03-02"])
moments = (st.datetimes().map(lambda d: d.isoformat(timespec="minutes"))
           | st.sampled_from(["9999-12-31T23:59", "0001-01-01T00:00", "2026-03-02T09:30+14:00"]))
numbers = st.integers(min_value=-10**30, max_value=10**30).map(str)
known = st.sampled_from(["cancel:3", "move:x", "reply:1", "message:1", "reply:99999999999999999999", "cancel", "move", "admin",
                         "front_desk", "provider", "1", "0", "declined|*", "unreachable|recall", "main up", "/today"])
value = st.text(max_size=60) | dates | moments | numbers | known
fields = st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=10), value), max_size=8)


def routes(app) -> list[tuple[str, str]]:
    while not hasattr(app, "routes"):  # through the web layer's middleware to the Starlette app
        app = app.app
    return [(method, route.path) for route in app.routes if isinstance(route, Route) and route.path not in SKIPPED
            for method in sorted(route.methods - {"HEAD"})]


def test_every_route_is_covered(app):
    covered = {path for _, path in routes(app)}
    assert {"/today", "/log", "/queue/apply", "/attention/handled", "/users/add", "/patient/{key:path}"} <= covered


@pytest.fixture
def admin(as_user):
    client = as_user("ada")
    return client, csrf_of(client.get("/queue").text)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_route_answers_5xx_to_any_value(admin, app, data):
    client, csrf = admin
    for method, path in routes(app):
        items = data.draw(fields, label=f"{method} {path}")
        key = data.draw(st.text(min_size=1, max_size=30), label="key") if "{" in path else ""
        url = path.replace("{key:path}", quote(key, safe=""))
        if method == "POST":
            assume(not (path == "/users/disable" and any(name == "name" and v.strip() == "ada" for name, v in items)))
            response = client.post(url, content=urlencode([("csrf", csrf), *items]),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            response = client.get(url, params=items)
        assert response.status_code < 500, (method, url, items, response.text[:300])
    assert client.get("/sync").status_code == 200  # still logged in: every route was reached as the admin


def test_a_queue_notice_it_cannot_read_is_left_out(as_user):
    client = as_user("ada")
    assert client.get("/queue?done=nonsense").status_code == 200
    assert "Cancelled 3 messages" in client.get("/queue?done=cancel:3").text
