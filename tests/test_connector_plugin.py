"""A connector from another distribution: installed from its own folder, configured and synced through
with no change to vitalsync (its own ``pyproject.toml``, entry point and ``Options``)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_config import assert_config_error

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "vitalsync-acme"
version = "0.1.0"
description = "Acme PMS for vitalsync: reads Acme's nightly JSON export."

[project.entry-points."vitalsync.connectors"]
acme = "vitalsync_acme:AcmeConnector"

[tool.setuptools]
py-modules = ["vitalsync_acme"]
"""

MODULE = '''\
"""Acme PMS: one JSON export file with the practice's locations, patients and appointments."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field

from vitalsync.core.errors import PersonMustAct
from vitalsync.sync.connector import AppointmentRecord, Batch, ConnectorOptions, LocationRecord, PatientRecord


class AcmeOptions(ConnectorOptions):
    """Acme PMS's JSON export."""

    export: Path = Field(description="The export file Acme writes every night.")


class AcmeConnector:
    name = "acme"
    Options = AcmeOptions

    def __init__(self, export: Path, zone: str) -> None:
        self.export, self.zone = export, ZoneInfo(zone)

    @classmethod
    def from_config(cls, options: AcmeOptions, config) -> AcmeConnector:
        return cls(config.relative(options.export), options.timezone or config.schedule.timezone)

    def _rows(self) -> dict:
        try:
            return json.loads(self.export.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PersonMustAct(f"cannot read the Acme export {self.export}: {exc.strerror}") from None

    def read(self, since: str | None, now: datetime) -> Batch:
        rows = self._rows()
        local = lambda text: datetime.fromisoformat(text).replace(tzinfo=self.zone)
        return Batch(
            complete=True, cursor=now.isoformat(),
            locations=[LocationRecord(key=r["id"], name=r["name"], timezone=self.zone.key) for r in rows["offices"]],
            patients=[PatientRecord(key=r["id"], first_name=r["first"], last_name=r["last"], mobile=r["cell"])
                      for r in rows["people"]],
            appointments=[AppointmentRecord(key=r["id"], patient_key=r["person"], location_key=r["office"],
                                            start=local(r["start"]), end=local(r["end"])) for r in rows["visits"]])

    def check(self) -> str:
        return f"Acme export {self.export.name}: {len(self._rows()['visits'])} visits"
'''

EXPORT = {
    "offices": [{"id": "O1", "name": "Acme Main"}],
    "people": [{"id": "P1", "first": "Ana", "last": "Acme", "cell": "+12125550111"},
               {"id": "P2", "first": "Ben", "last": "Acme", "cell": "+12125550122"}],
    "visits": [{"id": "V1", "person": "P1", "office": "O1", "start": "2031-03-03T10:00", "end": "2031-03-03T10:30"},
               {"id": "V2", "person": "P2", "office": "O1", "start": "2031-03-04T09:00", "end": "2031-03-04T10:00"}],
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The third-party connector, built from its own folder and installed into a folder of its own."""
    root = tmp_path_factory.mktemp("acme")
    source, target = root / "vitalsync-acme", root / "site"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (source / "vitalsync_acme.py").write_text(MODULE, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(target.glob("vitalsync_acme-*.dist-info/entry_points.txt")), sorted(p.name for p in target.iterdir())
    yield target
    shutil.rmtree(root)  # the installed connector, its build files and its source


def vitalsync(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``vitalsync ARGS`` in a process that sees the installed connector (and nothing else changed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VITALSYNC_CONFIG", "CREDENTIALS_DIRECTORY")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "vitalsync", *args], capture_output=True, text=True,
                          encoding="utf-8", cwd=cwd, env=env, timeout=180)


def acme_config(write_config, tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "acme.json").write_text(json.dumps(EXPORT), encoding="utf-8")
    return write_config('[database]\nurl = "sqlite:///vs.db"\n[schedule]\ntimezone = "America/Chicago"\n'
                        f'[connector]\ntype = "acme"\nexport = "acme.json"\n{extra}')


def test_a_third_party_connector_is_checked_and_synced_through_with_no_change_to_vitalsync(site, write_config, tmp_path):
    path = acme_config(write_config, tmp_path)
    check = vitalsync(site, "check", "--config", str(path), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK    connector: Acme export acme.json: 2 visits" in check.stdout, check.stdout

    sync = vitalsync(site, "sync", "--full", "--config", str(path), cwd=tmp_path)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    with sqlite3.connect(tmp_path / "vs.db") as db:
        visits = db.execute("SELECT key, patient_key, location_key, start FROM appointment ORDER BY key").fetchall()
        people = db.execute("SELECT key, mobile FROM patient ORDER BY key").fetchall()
    assert [row[:3] for row in visits] == [("V1", "P1", "O1"), ("V2", "P2", "O1")]
    assert "2031-03-03 16:00" in str(visits[0][3]), visits  # 10:00 in Chicago, stored in UTC
    assert people == [("P1", "+12125550111"), ("P2", "+12125550122")]


def test_a_bad_key_in_a_third_party_connectors_options_is_named_with_the_file(site, write_config, tmp_path):
    path = acme_config(write_config, tmp_path, extra="exports = 1\n")
    proc = vitalsync(site, "check", "--config", str(path), cwd=tmp_path)
    assert_config_error(proc, path, "connector.exports: unknown key",
                        "allowed here: type, timezone, default_region, export")

    path.write_text('[connector]\ntype = "acme"\n', encoding="utf-8")
    assert_config_error(vitalsync(site, "sync", "--config", str(path), cwd=tmp_path), path, "connector.export: Field required")


def test_the_example_shows_the_installed_connectors_keys_and_an_unknown_type_lists_it(site, write_config, tmp_path):
    example = vitalsync(site, "config", "example", cwd=tmp_path)
    assert example.returncode == 0, example.stderr
    section = example.stdout[example.stdout.index("# Acme PMS's JSON export."):]
    assert textwrap.dedent('''\
        # [connector]
        # The connector: demo, opendental, odbc, csv, hl7, fhir, or one installed separately (connectors/README.md).
        # type = "acme"''') in section
    assert "# The export file Acme writes every night.\n# export = " in section

    path = write_config('[connector]\ntype = "acmee"\n')
    assert_config_error(vitalsync(site, "check", "--config", str(path), cwd=tmp_path), path,
                        "connector.type: no connector named 'acmee' is installed",
                        "(installed: acme, csv, demo, fhir, hl7, odbc, opendental)")
