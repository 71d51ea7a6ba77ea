"""The FHIR R4 connector: Appointment, Patient, Practitioner and Location searched over HTTP.

A full read searches everything; an incremental read searches what changed since the cursor
(``_lastUpdated=ge``), starting a few seconds before it. The cursor is the server's own time of the
read, so a clock that differs between vitalsync and the server loses nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError, PersonMustAct
from vitalsync.core.secrets import read_secret
from vitalsync.sync.connector import Batch
from vitalsync_connectors.fhir import mapping
from vitalsync_connectors.fhir.client import FhirClient
from vitalsync_connectors.fhir.options import FhirOptions

#: Appointments first: the people searched after them include everyone they name.
KINDS = ("Appointment", "Patient", "Practitioner", "Location")
OVERLAP = timedelta(seconds=5)


class FhirConnector:
    """A FHIR R4 server, read-only."""

    name = "fhir"
    Options = FhirOptions

    def __init__(self, base_url: str, *, token: str | None = None, page_size: int = 200, timezone: str = "UTC",
                 region: str = "US", overlap: timedelta = OVERLAP, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"connector.base_url: {base_url!r} is not an http:// or https:// address")
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"connector.timezone: {timezone!r} is not a time zone (e.g. America/New_York)") from None
        self.base_url, self.token, self.page_size = base_url, token, page_size
        self.timezone, self.region, self.overlap, self.timeout = timezone, region, overlap, timeout

    @classmethod
    def from_config(cls, options: FhirOptions, config: Config) -> FhirConnector:
        """From ``[connector] type = "fhir"``; the token is the optional secret 'fhir_token'."""
        token = read_secret("fhir_token", options.token_file, key="connector.token_file",
                            config_path=config.path, required=False)
        return cls(options.base_url, token=token, page_size=options.page_size,
                   timezone=options.timezone or config.schedule.timezone, region=options.default_region)

    def read(self, since: str | None, now: datetime) -> Batch:
        params = {"_count": str(self.page_size)}
        if since is not None:
            params["_lastUpdated"] = "ge" + _instant(_cursor(since) - self.overlap)
        found, server_time = {}, None
        with self._client() as client:
            for kind in KINDS:
                found[kind], at = client.search(kind, params)
                server_time = at if kind == KINDS[0] else server_time
        batch = Batch(complete=since is None, cursor=_aware(server_time or now).isoformat())
        self._map(found, batch)
        return batch

    def check(self) -> str:
        with self._client() as client:
            statement, _ = client.get("metadata", what="capability statement")
            version = str(statement.get("fhirVersion", ""))
            if version and not version.startswith("4."):
                raise PersonMustAct(f"the server at {self.base_url} speaks FHIR {version}; vitalsync reads FHIR R4 (4.0.1)")
            found, _ = client.get("Appointment", {"_count": "1"}, what="Appointment search")
        software = statement.get("software")
        software = software.get("name") if isinstance(software, dict) else None
        total = f", {found['total']:,} appointments" if isinstance(found.get("total"), int) else ""
        return f"FHIR {version or 'R4'} server at {self.base_url} ({software or 'unnamed software'}){total}"

    def _client(self) -> FhirClient:
        return FhirClient(self.base_url, self.token, self.timeout)

    def _map(self, found: dict[str, list[dict]], batch: Batch) -> None:
        appointments, gone = {}, []
        for resource, record in _each(found["Appointment"], lambda r: mapping.appointment(r, self.zone), batch):
            if record is None:
                gone.append(resource["id"])
            else:
                appointments[record.key] = record
        batch.appointments = list(appointments.values())
        if not batch.complete:
            batch.deleted_appointments = list(dict.fromkeys(key for key in gone if key not in appointments))
        batch.patients = _unique(_each(found["Patient"], lambda r: mapping.patient(r, self.region), batch))
        batch.providers = _unique(_each(found["Practitioner"], mapping.practitioner, batch))
        batch.locations = _unique(_each(found["Location"], lambda r: mapping.location(r, self.timezone, self.region), batch))
        if any(a.location_key == mapping.NO_LOCATION for a in batch.appointments) and \
                mapping.NO_LOCATION not in {loc.key for loc in batch.locations}:
            batch.locations.append(mapping.fallback_location(self.timezone))


def _each(resources: list[dict], convert, batch: Batch):
    """(resource, record) for each resource that maps; the others are listed in ``batch.rejected``."""
    for resource in resources:
        kind, key = resource.get("resourceType"), resource.get("id")
        if not key:
            batch.rejected.append(f"a {kind} without an id")
            continue
        try:
            yield resource, convert(resource)
        except mapping.Unreadable as exc:
            batch.rejected.append(str(exc))
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            batch.rejected.append(f"{kind}/{key}: not a valid R4 {kind}")


def _unique(pairs) -> list:
    """The records by key; a resource seen on two pages counts once (the later wins)."""
    return list({record.key: record for _, record in pairs}.values())


def _cursor(since: str) -> datetime:
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise PersonMustAct(f"the saved sync cursor {since!r} is not a FHIR connector's; run 'vitalsync sync --full'") from None
    return _aware(moment)


def _aware(moment: datetime) -> datetime:
    """A server time written without an offset is UTC, as FHIR instants are."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _instant(moment: datetime) -> str:
    """A FHIR instant in UTC, to the millisecond (rounded down, so nothing is skipped)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
