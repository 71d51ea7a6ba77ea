"""The Open Dental connector's safety: errors that say what to do, a session that cannot write,
the config file, and confirmations written back only through Open Dental's REST API (a local
HTTP server stands in for api.opendental.com)."""

from __future__ import annotations

import socket
from datetime import date, datetime, timezone

import MySQLdb
import pytest

from vitalsync.core.config import load_config
from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater
from vitalsync.sync.registry import connector_class
from vitalsync_connectors.opendental import OpenDentalConnector, queries
from vitalsync_connectors.opendental.api import ConfirmApi
from vitalsync_connectors.opendental.database import connect, parse_url
from vitalsync_connectors.opendental.testapi import FakeOpenDentalApi
from vitalsync_connectors.opendental.testdb import create_schema, fill, scratch_database



@pytest.fixture(scope="module")
def practice(server):
    with scratch_database(f"{server}/vs_odconf") as (url, conn):
        create_schema(conn)
        fill(conn, patients=20, appointments=40, seed=4, start=date(2026, 3, 2))
        yield url


@pytest.fixture
def fresh(server):
    with scratch_database(f"{server}/vs_odconf") as (url, conn):
        create_schema(conn)
        fill(conn, patients=10, appointments=10, seed=4, start=date(2026, 3, 2))
        yield url, conn


# --- errors and safety -----------------------------------------------------------------------

def test_the_connector_s_session_refuses_writes(practice):
    conn = connect(parse_url(practice))
    cursor = conn.cursor()
    for statement in ("UPDATE appointment SET Confirmed = 4 WHERE AptNum = 1", "DELETE FROM commoptout",
                      "INSERT INTO commlog (PatNum) VALUES (1)"):
        with pytest.raises(MySQLdb.OperationalError) as caught:
            cursor.execute(statement)
        assert caught.value.args[0] in (1792, 1146)  # read-only transaction (commlog is not in the test schema)
    conn.close()
    assert "(read-only session)" in OpenDentalConnector(practice).check()


def test_the_connector_only_ever_selects():
    statements = [value for name, value in vars(queries).items() if name.isupper() and isinstance(value, str)]
    assert all(sql.startswith("SELECT ") for sql in statements if " FROM " in sql) and len(statements) > 10


def test_check_names_the_version_and_the_size(practice):
    assert OpenDentalConnector(practice).check().startswith("Open Dental 24.2.45.0 at root@127.0.0.1:3306/")


def test_a_server_that_is_not_there_is_retried_later():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = OpenDentalConnector(f"mysql://reader@127.0.0.1:{port}/opendental")
    with pytest.raises(RetryLater, match="not reachable"):
        connector.read(None, datetime.now(timezone.utc))
    with pytest.raises(RetryLater):
        connector.check()


def test_a_wrong_password_a_missing_grant_or_database_needs_a_person(practice):
    target = parse_url(practice)
    admin = connect(target, read_only=False)
    cursor = admin.cursor()
    cursor.execute("CREATE USER IF NOT EXISTS 'vs_od_reader'@'%' IDENTIFIED BY 'right-one'")
    cursor.execute(f"GRANT SELECT ON `{target.database}`.patient TO 'vs_od_reader'@'%'")
    base = practice.replace("root@", "vs_od_reader@")
    try:
        with pytest.raises(PersonMustAct, match="access denied for 'vs_od_reader'"):
            OpenDentalConnector(base, password="wrong").read(None, datetime.now(timezone.utc))
        with pytest.raises(PersonMustAct, match=r"GRANT SELECT ON `vs_odconf_\w+`\.\* TO 'vs_od_reader'"):
            OpenDentalConnector(base, password="right-one").read(None, datetime.now(timezone.utc))
    finally:
        cursor.execute("DROP USER 'vs_od_reader'@'%'")
        admin.close()
    with pytest.raises(PersonMustAct, match="does not exist"):
        OpenDentalConnector(practice + "_gone").check()


def test_a_missing_table_needs_a_person_and_an_update_in_progress_waits(fresh):
    url, conn = fresh
    connector = OpenDentalConnector(url)
    conn.cursor().execute("UPDATE preference SET ValueString = 'FRONTDESK-2' WHERE PrefName = 'UpdateInProgressOnComputerName'")
    conn.commit()
    with pytest.raises(RetryLater, match="being updated"):
        connector.read(None, datetime.now(timezone.utc))
    conn.cursor().execute("UPDATE preference SET ValueString = '' WHERE PrefName = 'UpdateInProgressOnComputerName'")
    conn.cursor().execute("DROP TABLE recall")
    conn.commit()
    with pytest.raises(PersonMustAct, match="a table is missing.*recall"):
        connector.read(None, datetime.now(timezone.utc))


# --- config and write-back ------------------------------------------------------------------

@pytest.fixture
def api():
    with FakeOpenDentalApi("dev-key/customer-key") as server:
        yield server


def test_the_connector_is_found_by_its_type_and_built_from_the_config(practice, write_config, tmp_path):
    (tmp_path / "od-password").write_text("\n")
    (tmp_path / "od-password").chmod(0o600)
    path = write_config(f'[connector]\ntype = "opendental"\nurl = "{practice}"\npassword_file = "od-password"\n'
                        'overlap_seconds = 9\ndefault_region = "CA"\n[clinic]\nname = "Riverside"\n'
                        '[schedule]\ntimezone = "America/Chicago"\n')
    config = load_config(path)
    connector = connector_class("opendental").from_config(config.connector, config)
    assert isinstance(connector, OpenDentalConnector) and connector.api is None
    assert (connector.timezone, connector.region, connector.overlap.seconds) == ("America/Chicago", "CA", 9)
    locations = connector.read(None, datetime.now(timezone.utc)).locations
    assert (locations[0].key, locations[0].name, locations[0].timezone) == ("0", "Riverside", "America/Chicago")


def test_a_password_in_the_url_or_write_back_without_a_key_is_a_config_error(write_config, monkeypatch):
    monkeypatch.delenv("VITALSYNC_OPENDENTAL_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="password_file"):
        OpenDentalConnector("mysql://reader:secret@db:3306/opendental")
    with pytest.raises(ConfigError, match="not mysql://"):
        OpenDentalConnector("postgresql://db/opendental")
    config = load_config(write_config('[connector]\ntype = "opendental"\nurl = "mysql://reader@db/od"\nwrite_back = true\n'))
    with pytest.raises(ConfigError, match="opendental_api_key"):
        OpenDentalConnector.from_config(config.connector, config)


def test_a_confirmation_goes_through_the_rest_api_with_the_odfhir_key(practice, api):
    connector = OpenDentalConnector(practice, api=ConfirmApi(api.url, "dev-key/customer-key"))
    connector.confirm("12")
    connector.confirm("13", def_num=8)
    assert api.requests == [
        ("PUT", "/api/v1/appointments/12/Confirm", "ODFHIR dev-key/customer-key", {"confirmVal": "Confirmed"}),
        ("PUT", "/api/v1/appointments/13/Confirm", "ODFHIR dev-key/customer-key", {"defNum": 8}),
    ]


def test_the_api_s_answers_say_what_to_do_next(practice, api):
    connector = OpenDentalConnector(practice, api=ConfirmApi(api.url, "dev-key/customer-key"))
    api.statuses = [401, 503, 404]
    with pytest.raises(PersonMustAct, match="refused the key"):
        connector.confirm("12")
    with pytest.raises(RetryLater, match="HTTP 503"):
        connector.confirm("12")
    with pytest.raises(PersonMustAct, match="HTTP 404"):
        connector.confirm("12")
    with pytest.raises(ValueError):
        connector.confirm("12", "Maybe")
    unreachable = OpenDentalConnector(practice, api=ConfirmApi("http://127.0.0.1:9/api/v1", "k", timeout=2))
    with pytest.raises(RetryLater, match="not reachable"):
        unreachable.confirm("12")


def test_without_write_back_nothing_is_written(practice):
    with pytest.raises(PersonMustAct, match="write-back to Open Dental is off"):
        OpenDentalConnector(practice).confirm("12")
