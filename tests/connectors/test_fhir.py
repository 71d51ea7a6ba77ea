"""The FHIR connector reads a real FHIR server over HTTP on loopback: the fake shipped with it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from tenacity import wait_none

from vitalsync.core.config import load_config
from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.testing import ConnectorContract
from vitalsync_connectors.fhir import FhirConnector, client
from vitalsync_connectors.fhir.fake_server import FakeFhirServer

TOKEN = "s3cret-token"
NEW_YORK = ZoneInfo("America/New_York")
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"


def phone(value: str, use: str | None = None, system: str = "phone") -> dict:
    return {"system": system, "value": value, **({"use": use} if use else {})}


def patient(key: str, given: str, family: str, *telecom: dict, **extra) -> dict:
    return {"resourceType": "Patient", "id": key, "active": True, "telecom": list(telecom),
            "name": [{"use": "official", "given": [given], "family": family}], **extra}


def appointment(key: str, patient_key: str, start: datetime, *, status: str = "booked", location: str | None = "L1",
                practitioner: str = "P1", minutes: int = 30) -> dict:
    actors = [f"Patient/{patient_key}", f"Practitioner/{practitioner}"] + ([f"Location/{location}"] if location else [])
    return {"resourceType": "Appointment", "id": key, "status": status, "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(), "appointmentType": {"text": "Cleaning"},
            "participant": [{"actor": {"reference": actor}, "status": "accepted"} for actor in actors]}


def fill(server: FakeFhirServer, now: datetime) -> None:
    """A small practice, last changed yesterday: two offices, three providers, twelve patients."""
    then = now - timedelta(days=1)
    server.put({"resourceType": "Location", "id": "L1", "name": "Riverside Dental", "telecom": [phone("(212) 555-0100")],
                "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": "America/New_York"}]}, at=then)
    server.put({"resourceType": "Location", "id": "L2", "name": "Hillcrest Dental"}, at=then)
    for key, given, family in (("P1", "Maya", "Chen"), ("P2", "Samuel", "Ortiz"), ("P3", "Priya", "Nair")):
        server.put({"resourceType": "Practitioner", "id": key,
                    "name": [{"prefix": ["Dr."], "given": [given], "family": family}]}, at=then)
    people = [
        patient("1", "Ana", "Ruiz", phone("(201) 555-0123", "mobile"), {"system": "email", "value": "ana@example.com"},
                communication=[{"language": {"coding": [{"code": "es"}]}, "preferred": True}]),
        patient("2", "Ben", "Okafor", phone("201-555-0144", system="sms")),
        patient("3", "Cleo", "Hart", phone("(212) 555-0188", "home")),
        patient("4", "Dan", "Broken", phone("555-CALL-ME-NOW-PLEASE", "mobile"), phone("12", "home")),
        patient("5", "Eve", "Late", phone("(201) 555-0166", "mobile"), deceasedDateTime="2025-12-01"),
        patient("6", "Finn", "Gone", phone("(201) 555-0177", "mobile"), active=False),
    ] + [patient(str(n), f"Pat{n}", "Smith", phone(f"(201) 555-02{n:02d}", "mobile")) for n in range(7, 13)]
    for person in people:
        server.put(person, at=then)
    tomorrow = datetime.combine(now.astimezone(NEW_YORK).date() + timedelta(days=2), datetime.min.time(), NEW_YORK)
    for n in range(1, 19):
        start = tomorrow + timedelta(days=n // 6, hours=9 + n % 6)
        server.put(appointment(f"a{n}", str(1 + n % 12), start, location="L1" if n % 2 else "L2",
                               practitioner=f"P{1 + n % 3}"), at=then)
    server.put(appointment("past", "7", tomorrow - timedelta(days=5), status="fulfilled"), at=then)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(client, "WAIT", wait_none())


@pytest.fixture
def server():
    with FakeFhirServer(token=TOKEN) as server:
        fill(server, datetime.now(timezone.utc))
        yield server


def connect(server: FakeFhirServer, **options) -> FhirConnector:
    return FhirConnector(server.base_url, **{"token": TOKEN, "timezone": "America/New_York", "timeout": 5, **options})


def read(connector: FhirConnector, since: str | None = None):
    return connector.read(since, datetime.now(timezone.utc))


class FhirSource:
    """A clinic's staff changing appointments on the FHIR server between reads."""

    def __init__(self, server: FakeFhirServer) -> None:
        self.server, self.connector, self.used = server, connect(server), iter(f"a{n}" for n in range(1, 19))

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def cancel(self) -> str:
        return self.server.cancel(next(self.used))["id"]

    def move(self) -> str:
        return self.server.move(next(self.used))["id"]

    def delete(self) -> str:
        return self.server.delete(next(self.used))["id"]


class TestFhirContract(ConnectorContract):
    @pytest.fixture
    def source(self, server):
        return FhirSource(server)


def test_a_search_is_followed_through_its_next_links(server):
    batch = read(connect(server, page_size=2))
    assert len(batch.patients) == 12 and len(batch.appointments) == 19
    pages = [seen for seen in server.requests if "_getpages" in seen.query]
    assert len(pages) >= 3 + 8  # patients 12/2, appointments 19/2: every later page came from a next link
    assert all(seen.query["_count"] == ["2"] for seen in server.requests)


def test_a_full_read_searches_without_last_updated_and_an_incremental_one_with_it(server):
    connector = connect(server)
    cursor = read(connector).cursor
    read(connector, cursor)
    searches = [seen for seen in server.requests if "_getpages" not in seen.query]
    assert [("_lastUpdated" in seen.query) for seen in searches] == [False] * 4 + [True] * 4
    since = datetime.fromisoformat(searches[-1].query["_lastUpdated"][0].removeprefix("ge"))
    assert timedelta(seconds=5) <= datetime.fromisoformat(cursor) - since < timedelta(seconds=5, milliseconds=1)


def test_an_incremental_read_returns_only_the_changed_resources(server):
    connector = connect(server)
    cursor = read(connector).cursor
    changed = server.get("Patient", "3")
    changed["telecom"] = [phone("(201) 555-0199", "mobile")]
    server.put(changed)
    server.move("a4")
    batch = read(connector, cursor)
    assert [p.key for p in batch.patients] == ["3"] and batch.patients[0].mobile == "+12015550199"
    assert [a.key for a in batch.appointments] == ["a4"]
    assert not batch.providers and not batch.locations and not batch.deleted_appointments


def test_the_cursor_is_the_servers_time_even_without_bundle_meta(server):
    server.stamp_bundles = False
    before = datetime.now(timezone.utc).replace(microsecond=0)
    cursor = datetime.fromisoformat(read(connect(server)).cursor)
    assert before <= cursor <= datetime.now(timezone.utc)  # from the HTTP Date header, to the second


def test_the_token_is_sent_as_a_bearer_token(server):
    read(connect(server))
    assert server.requests and {seen.authorization for seen in server.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_a_refused_token_is_for_a_person_to_fix(server, token):
    with pytest.raises(PersonMustAct, match="refused the token; check the credential 'fhir_token'"):
        read(connect(server, token=token))


def test_check_also_proves_the_token(server):
    with pytest.raises(PersonMustAct, match="fhir_token"):
        connect(server, token="wrong-token").check()


def test_a_server_that_fails_twice_is_retried_until_it_answers(server):
    server.unavailable = 2
    assert read(connect(server)).appointments
    assert len(server.requests) > 2 and server.requests[0] == server.requests[1] == server.requests[2]


def test_a_server_that_keeps_failing_means_retry_later(server):
    server.unavailable = 1000
    with pytest.raises(RetryLater, match="503"):
        read(connect(server))
    assert len(server.requests) == client.ATTEMPTS


def test_a_server_that_hangs_means_retry_later(server):
    server.hang = True
    with pytest.raises(RetryLater, match="timed out"):
        read(connect(server, timeout=0.2))


def test_a_server_that_is_not_there_means_retry_later():
    with FakeFhirServer() as gone:
        url = gone.base_url
    with pytest.raises(RetryLater, match="could not connect"):
        FhirConnector(url).read(None, datetime.now(timezone.utc))


def test_a_wrong_base_url_is_for_a_person_to_fix(server):
    with pytest.raises(PersonMustAct, match="404.*check base_url"):
        read(FhirConnector(server.base_url + "/R4", token=TOKEN))


def test_next_links_to_another_server_are_not_followed_with_the_token(server):
    server.advertised_url = "http://fhir-internal:8080/fhir"
    with pytest.raises(PersonMustAct, match="next link to another server"):
        read(connect(server, page_size=5))


def test_a_search_the_server_forgot_while_paging_means_retry_later(server):
    server.keep_searches = False
    with pytest.raises(RetryLater, match="expired"):
        read(connect(server, page_size=5))


def test_statuses_map_and_removed_appointments_are_reported_deleted(server):
    connector = connect(server)
    cursor = read(connector).cursor
    for key, status in (("a1", "arrived"), ("a2", "noshow"), ("a3", "fulfilled"), ("a5", "waitlist")):
        server.put(server.get("Appointment", key) | {"status": status})
    server.cancel("a6"), server.delete("a7")
    batch = read(connector, cursor)
    assert {a.key: a.status for a in batch.appointments} == {
        "a1": AppointmentStatus.SCHEDULED, "a2": AppointmentStatus.NO_SHOW, "a3": AppointmentStatus.COMPLETED,
        "a6": AppointmentStatus.CANCELLED}
    assert sorted(batch.deleted_appointments) == ["a5", "a7"]
    full = read(connector)
    assert not {"a5", "a7"} & {a.key for a in full.appointments} and not full.deleted_appointments


def test_patients_are_mapped_from_their_telecom_language_and_life(server):
    patients = {p.key: p for p in read(connect(server)).patients}
    assert (patients["1"].first_name, patients["1"].last_name, patients["1"].mobile, patients["1"].email,
            patients["1"].language) == ("Ana", "Ruiz", "+12015550123", "ana@example.com", "es")
    assert patients["2"].mobile == "+12015550144", "an sms number is the mobile"
    assert (patients["3"].mobile, patients["3"].landline) == (None, "+12125550188")
    assert (patients["4"].mobile, patients["4"].landline) == (None, None), "broken phones are dropped"
    assert not patients["5"].active and not patients["6"].active and patients["7"].active


def test_locations_take_their_zone_from_the_extension_else_the_configured_one(server):
    batch = read(connect(server, timezone="America/Chicago"))
    locations = {loc.key: loc for loc in batch.locations}
    assert (locations["L1"].name, locations["L1"].timezone, locations["L1"].phone) == \
        ("Riverside Dental", "America/New_York", "+12125550100")
    assert locations["L2"].timezone == "America/Chicago"
    assert {p.name for p in batch.providers} == {"Dr. Maya Chen", "Dr. Samuel Ortiz", "Dr. Priya Nair"}


def test_an_appointment_without_a_location_is_held_at_the_practice(server):
    server.put(appointment("floating", "8", datetime.now(NEW_YORK) + timedelta(days=3), location=None))
    batch = read(connect(server))
    assert {a.key: a.location_key for a in batch.appointments}["floating"] == "default"
    assert "default" in {loc.key for loc in batch.locations}


def test_an_unreadable_appointment_is_rejected_without_patient_data_and_the_rest_is_kept(server):
    broken = appointment("odd", "9", datetime.now(NEW_YORK) + timedelta(days=3))
    broken["participant"] = broken["participant"][1:]
    server.put(broken)
    server.put(appointment("garbled", "9", datetime.now(NEW_YORK)) | {"start": "next Tuesday"})
    batch = read(connect(server))
    assert sorted(batch.rejected) == ["Appointment/garbled: start: not a date-time", "Appointment/odd: no Patient participant"]
    assert len(batch.appointments) == 19


def test_check_describes_the_server(server):
    assert connect(server).check() == f"FHIR 4.0.1 server at {server.base_url} (vitalsync fake FHIR server), 19 appointments"


def test_a_cursor_from_another_connector_asks_for_a_full_sync(server):
    with pytest.raises(PersonMustAct, match="vitalsync sync --full"):
        connect(server).read("opendental:12345", datetime.now(timezone.utc))


def test_from_config_reads_the_token_secret_and_the_zones(server, write_config, tmp_path):
    (tmp_path / "token.txt").write_text(TOKEN + "\n")
    (tmp_path / "token.txt").chmod(0o600)
    config = load_config(write_config(
        f'[database]\nurl = "sqlite:///{tmp_path / "vs.db"}"\n[clinic]\nname = "Test Dental"\nphone = "(212) 555-0100"\n'
        f'[schedule]\ntimezone = "America/Denver"\n'
        f'[connector]\ntype = "fhir"\nbase_url = "{server.base_url}"\ntoken_file = "token.txt"\npage_size = 5\n'))
    connector = FhirConnector.from_config(config.connector, config)
    assert (connector.token, connector.page_size, connector.timezone) == (TOKEN, 5, "America/Denver")
    assert read(connector).patients
