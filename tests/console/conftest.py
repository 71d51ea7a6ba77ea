"""A small practice (two locations, two providers, three patients) synced and planned, and a
console over it with one account per role. Runs on SQLite and on PostgreSQL like the pipeline tests."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from vitalsync.console import accounts
from vitalsync.console.web import console_app
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, PatientRecord, ProviderRecord

NEW_YORK = ZoneInfo("America/New_York")
PASSWORD = "correct horse battery"
SECRET = "s" * 64


@pytest.fixture
def practice(runtime, connector):
    """Patients 1 and 2 see Dr. North at Main Street; patient 3 sees Dr. South at Uptown. Appointments on 3 March."""
    connector.practice.locations = [LocationRecord("main", "Main Street", "America/New_York"),
                                    LocationRecord("up", "Uptown", "America/New_York")]
    connector.practice.providers = [ProviderRecord("north", "Dr. North", "main"), ProviderRecord("south", "Dr. South", "up")]
    connector.practice.patients = [PatientRecord(str(k), name, "Doe", mobile=f"+1212555000{k}") for k, name in
                                   ((1, "Ann"), (2, "Ben"), (3, "Cal"))]
    start = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
    connector.practice.appointments = [
        AppointmentRecord(f"a{k}", str(k), loc, start + timedelta(hours=k), start + timedelta(hours=k, minutes=30),
                          provider_key=prov) for k, loc, prov in ((1, "main", "north"), (2, "main", "north"), (3, "up", "south"))]
    runtime.sync_once(full=True)
    runtime.plan_once()
    now = runtime.clock.now()
    for name, role, provider, locations in (("ada", "admin", None, None), ("fran", "front_desk", None, None),
                                            ("nora", "provider", "north", None), ("upton", "front_desk", None, ["up"])):
        accounts.add_user(runtime.engine, name, role, PASSWORD, now, provider_key=provider, locations=locations)
    return runtime


@pytest.fixture
def app(practice):
    return console_app(practice.engine, practice.config, practice.clock, SECRET)


@pytest.fixture
def client(app):
    """A browser without a session. Secure cookies need https, even in tests."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"csrf": token, "name": name, "password": password})


@pytest.fixture
def as_user(client):
    def login(name: str) -> TestClient:
        response = log_in(client, name)
        assert response.status_code == 303, response.text
        return client
    return login
