"""Layered fixtures: database URL → config → runtime (fake connector, recording sender, virtual clock).

Every test that takes ``config`` or ``runtime`` runs twice: on SQLite and on the PostgreSQL server
at 127.0.0.1:5432. Without that server the PostgreSQL half skips, except in CI, where it fails.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vitalsync.app.runtime import Runtime, open_database
from vitalsync.core.clock import VirtualClock
from vitalsync.core.config import load_config
from vitalsync.dispatch.fake import FakeSender
from vitalsync.rules.kinds import load_kinds
from vitalsync.sync.fake import FakeConnector

POSTGRES = os.environ.get("VITALSYNC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NEW_YORK = ZoneInfo("America/New_York")


def _postgres_database():
    try:
        import psycopg
        admin = psycopg.connect(POSTGRES.replace("postgresql+psycopg", "postgresql"), autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not there
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES} is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    name = f"vitalsync_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    return admin, name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vitalsync.db'}"
        return
    admin, name = _postgres_database()
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config file from TOML text and return its path."""
    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture
def config(write_config, database_url):
    return load_config(write_config(f'[database]\nurl = "{database_url}"\n[clinic]\nname = "Test Dental"\nphone = "(212) 555-0100"\n'))


@pytest.fixture
def clock() -> VirtualClock:
    """Monday 2 March 2026, midnight in New York."""
    return VirtualClock(datetime(2026, 3, 2, 0, 0, tzinfo=NEW_YORK))


@pytest.fixture
def connector() -> FakeConnector:
    return FakeConnector()


@pytest.fixture
def runtime(config, clock, connector):
    engine = open_database(config)
    yield Runtime(config=config, engine=engine, connector=connector, kinds=load_kinds(config.message_kinds.enabled),
                  sender=FakeSender(clock=clock, simulate=False), clock=clock)
    engine.dispose()
