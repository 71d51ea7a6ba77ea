"""The configuration: one TOML file with a strict schema, written for the IT staff who edit it.

Unknown keys are errors; every error names the file, the key path and what is allowed. Secrets never
have to be in the file: see :mod:`vitalsync.core.secrets`. ``config.example.toml`` is generated from
these models (``vitalsync config example``), so every field carries a description.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, SerializeAsAny, ValidationError, field_validator,
                      model_validator)

from vitalsync.core import connector_config, values
from vitalsync.core.connector_config import ConnectorOptions
from vitalsync.core.errors import ConfigError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
STOCK_KINDS = [
    "appointment_reminder", "appointment_moved", "appointment_cancellation", "pre_appointment",
    "after_appointment", "recall", "product_pickup",
    "office_closed",  # manual: sends only when staff start a group send, so enabling it is safe
]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'America/New_York')") from None
    return name


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(Section):
    """Where vitalsync keeps its mirror of the PMS and its message queue."""

    url: str = Field("sqlite:///vitalsync.db", description=(
        "SQLAlchemy URL. A relative SQLite path is taken in $STATE_DIRECTORY when it is set (the systemd "
        "unit's /var/lib/vitalsync), else beside this file. For several workers use "
        "PostgreSQL: 'postgresql+psycopg://vitalsync@db-host/vitalsync' (no password here)."))
    password_file: Path | None = Field(None, description=(
        "File holding the database password. Without it the password comes from "
        "$VITALSYNC_DATABASE_PASSWORD or the systemd credential 'database_password'."))

    _check_url = field_validator("url")(values.database_url)


class ScheduleConfig(Section):
    """When messages may go out. Each location can override any of these under [locations.KEY]."""

    timezone: str = Field("America/New_York", description="The clinic's time zone (IANA name).")
    window_start: time = Field(time(9, 0), description="Earliest send time, clinic time.")
    window_end: time = Field(time(19, 0), description="Latest send time, clinic time.")
    days: list[Weekday] = Field(["mon", "tue", "wed", "thu", "fri", "sat"], description="Days messages go out.")
    holidays: list[date] = Field([], description="Dates with no messages, e.g. [2026-12-25].")
    quiet_start: time = Field(time(20, 0), description="Quiet hours start, in the recipient's own time zone.")
    quiet_end: time = Field(time(9, 0), description="Quiet hours end, in the recipient's own time zone.")
    spacing_minutes: int = Field(30, ge=0, le=24 * 60, description=(
        "Minutes between two messages to one address (phone number or email): a message planned "
        "closer than this to another one for the same address waits. 0 turns spacing off."))
    max_per_day: int = Field(1, ge=1, description=(
        "Messages per address per day (a calendar day in the clinic's time zone) on cap_channels. "
        "Kinds in cap_exempt count but are never held back; others over the cap are deferred."))
    max_per_week: int = Field(3, ge=1, description="Messages per address in any 7 days, counted like max_per_day.")
    cap_channels: list[Literal["sms", "email", "voice"]] = Field(["sms", "voice"], description=(
        "Channels the cap applies to (1 a day and 3 a week for texts and calls fit the US healthcare exemption)."))
    cap_exempt: list[str] = Field([
        "appointment_reminder", "appointment_moved", "appointment_cancellation", "pre_appointment",
        "after_appointment", "office_closed"], description=(
        "Kinds that count toward the cap but are never deferred or skipped by it (by default the "
        "appointment kinds, the office-closed group send among them: a closure notice held to the next "
        "day would come too late; the cap holds back recalls and pick-up notices)."))
    priority: list[str] = Field([
        "appointment_cancellation", "appointment_moved", "appointment_reminder", "pre_appointment",
        "after_appointment", "product_pickup", "recall"], description=(
        "Which kind gets an address's place first when the cap allows only some; kinds not listed come last."))

    _check_zone = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _window_in_order(self):
        _check_window(self.window_start, self.window_end)
        return self


def _check_window(start: time | None, end: time | None) -> None:
    if start is not None and end is not None and start >= end:
        raise ValueError(f"the send window must start before it ends (window_start {start:%H:%M} is not before "
                         f"window_end {end:%H:%M}; a window across midnight is not allowed: messages at night are what it prevents)")


class LocationConfig(Section):
    """Overrides of the schedule for one location (the key is the PMS's location key)."""

    timezone: str | None = Field(None, description="The location's time zone, when not the clinic's.")
    window_start: time | None = Field(None, description="Earliest send time at this location.")
    window_end: time | None = Field(None, description="Latest send time at this location.")
    days: list[Weekday] | None = Field(None, description="Days messages go out for this location.")
    holidays: list[date] | None = Field(None, description="Dates with no messages for this location.")

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)

    @model_validator(mode="after")
    def _window_in_order(self):
        _check_window(self.window_start, self.window_end)
        return self


class DaemonConfig(Section):
    """What `vitalsync run` does and how often."""

    full_sync_at: time = Field(time(2, 0), description="Time of the nightly full sync, clinic time.")
    incremental_sync_minutes: int = Field(5, ge=1, description="Minutes between incremental syncs.")
    plan_minutes: int = Field(5, ge=1, description="Minutes between planning passes.")
    dispatch_seconds: int = Field(30, ge=1, description="Seconds between dispatch passes.")
    plan_ahead_days: int = Field(3, ge=1, le=60, description="Messages are queued when due within this many days.")
    batch_size: int = Field(100, ge=1, le=10_000, description="Messages claimed per dispatch pass.")
    lease_seconds: int = Field(300, ge=10, description="How long a claimed message stays reserved.")
    job_lease_seconds: int = Field(
        60, ge=3, description="Sync, planning and reconciliation run in one process at a time, under a lease its "
        "holder renews every third of this; when the holder dies, another process takes over after this long.")


class SyncConfig(Section):
    """Safety of syncing."""

    max_removed_share: float = Field(0.25, ge=0, le=1, description=(
        "Hold a sync that would cancel or delete more than this share of upcoming appointments."))
    min_upcoming_for_guard: int = Field(20, ge=0, description="The guard applies from this many upcoming appointments.")


class MessageKindsConfig(Section):
    """Which message kinds run."""

    directory: Path | None = Field(None, description=(
        "A folder of site kinds (TOML); a file there replaces the stock kind of the same name."))
    enabled: list[str] = Field(STOCK_KINDS, description=(
        "Kinds to plan, by file name. A kind with trigger = \"manual\" (office_closed) is never planned: "
        "it sends only when staff start a group send (console: Send to a group; `vitalsync send`)."))


class ClinicConfig(Section):
    """What patients see in messages."""

    name: str = Field("Our clinic", description="The clinic's name as it appears in messages.")
    phone: str = Field("", description=(
        "The number patients call back, as printed in messages (a number of [connector] default_region, "
        "or with + and the country code)."))


class RepliesConfig(Section):
    """Answers to patients' replies."""

    help_text: str = Field(
        "Appointment reminders from {clinic}. Reply C to confirm, N to decline, R to reschedule, "
        "STOP to opt out. Call {phone} for help.", description="Answer to HELP ({clinic} and {phone} filled in).")
    unknown_answer: str = Field(
        "Thanks, we have passed your message to the front desk.", description=(
            "Automatic answer to a reply a person must read; empty sends none."))

    _check_help = field_validator("help_text")(values.placeholders({"clinic", "phone"}))
    _check_unknown = field_validator("unknown_answer")(values.placeholders(set()))


class SenderConfig(Section):
    """How messages leave."""

    type: Literal["fake", "providers"] = Field("fake", description=(
        "'fake' records messages and simulates the patients; 'providers' sends SMS and voice through "
        "Twilio and email through SendGrid ([twilio], [sendgrid], [webhooks])."))
    seed: int = Field(11, description="fake: the seed of simulated deliveries and replies.")


class TwilioConfig(Section):
    """Twilio, for SMS and voice (with [sender] type = "providers")."""

    account_sid: str = Field("", description="The account SID (AC...).")
    auth_token_file: Path | None = Field(None, description=(
        "File with the auth token (else $VITALSYNC_TWILIO_AUTH_TOKEN or the credential 'twilio_auth_token')."))
    from_number: str = Field("", description="The sending number in E.164, when no messaging service is used.")
    messaging_service_sid: str = Field("", description="A messaging service (MG...) to send from instead of a number.")
    base_url: str = Field("https://api.twilio.com", description="The API address (a regional edge, or a test server).")
    timeout: float = Field(10.0, gt=0, description="Seconds to wait for Twilio's answer.")
    messages_per_second: float = Field(1.0, gt=0, le=10_000, description=(
        "SMS segments per second from from_number or the messaging service, never exceeded: 1 for a "
        "US long code (more under an A2P 10DLC campaign, per its trust score), 3 for toll-free, 100 "
        "for a short code, 10 outside +1. Per process: with several processes, give each its share."))
    calls_per_second: float = Field(1.0, gt=0, le=10_000, description=(
        "Voice calls per second (Twilio's default limit is 1 per account). Per process, like messages_per_second."))

    _check_account = field_validator("account_sid")(values.sid("AC"))
    _check_service = field_validator("messaging_service_sid")(values.sid("MG"))
    _check_number = field_validator("from_number")(values.e164)
    _check_base = field_validator("base_url")(values.api_url)


class SendGridConfig(Section):
    """SendGrid, for email (with [sender] type = "providers")."""

    api_key_file: Path | None = Field(None, description=(
        "File with the API key (else $VITALSYNC_SENDGRID_API_KEY or the credential 'sendgrid_api_key')."))
    from_email: str = Field("", description="The sender address, verified at SendGrid.")
    from_name: str = Field("", description="The sender name patients see.")
    base_url: str = Field("https://api.sendgrid.com", description="The API address (a test server in tests).")
    timeout: float = Field(10.0, gt=0, description="Seconds to wait for SendGrid's answer.")
    webhook_public_key: str = Field("", description="The Signed Event Webhook's verification key (public, base64).")
    messages_per_second: float = Field(10.0, gt=0, le=10_000, description=(
        "Emails per second from from_email, never exceeded (vitalsync's own pace, to spread a batch). "
        "Per process, like [twilio] messages_per_second."))

    reply_domain: str = Field("", description=(
        "A domain whose mail SendGrid's Inbound Parse receives (its MX points at mx.sendgrid.net): each email "
        "then carries Reply-To reply+TOKEN@this-domain, and a patient's emailed C / N / R / STOP is read like a "
        "text. Empty: no Reply-To; replies reach from_email, where a person reads them."))
    inbound_secret_file: Path | None = Field(None, description=(
        "File with the secret that authenticates Inbound Parse posts (else $VITALSYNC_SENDGRID_INBOUND_SECRET or "
        "the credential 'sendgrid_inbound_secret'): set the Parse URL to "
        "https://USER:SECRET@your-webhooks/webhooks/sendgrid/inbound (any user name) or "
        "https://your-webhooks/webhooks/sendgrid/inbound/SECRET. Required with reply_domain."))
    _check_from = field_validator("from_email")(values.email)
    _check_domain = field_validator("reply_domain")(values.domain)
    _check_base = field_validator("base_url")(values.api_url)


class WebhooksConfig(Section):
    """Where providers report deliveries and replies."""

    listen: str = Field("127.0.0.1:8088", description="host:port the webhook receiver listens on.")
    public_url: str = Field("", description="The address providers call, as they see it (https://...); signatures cover it.")
    max_body_bytes: int = Field(1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024, description=(
        "Largest request body accepted, in bytes; a larger one gets 413 before it is read. Twilio's "
        "callbacks are a few KB; SendGrid's event batches reach 768 KB."))

    _check_listen = field_validator("listen")(values.listen)
    _check_url = field_validator("public_url")(values.public_url)


class ConsoleConfig(Section):
    """The front desk's web console (served by `vitalsync run`): pages behind staff accounts."""

    enabled: bool = Field(False, description=(
        "Serve the console. Needs a signing secret: secret_key_file, $VITALSYNC_CONSOLE_SECRET_KEY or the "
        "systemd credential 'console_secret_key'. Staff accounts: `vitalsync user add`."))
    listen: str = Field("127.0.0.1:8089", description=(
        "host:port the console listens on. Put it behind a TLS proxy when staff reach it over the network."))
    secret_key_file: Path | None = Field(None, description=(
        "File with a long random secret that signs the console's forms (e.g. `openssl rand -hex 32 > console.key`)."))
    secure_cookies: bool = Field(True, description=(
        "Send the session cookie only over HTTPS (browsers also allow it on localhost). Turn off only "
        "on a trusted network without TLS."))
    session_minutes: int = Field(480, ge=5, le=7 * 24 * 60, description="A login lasts this long without use.")
    lockout_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock an account.")
    lockout_minutes: int = Field(15, ge=1, description="How long a locked account stays locked.")
    login_attempts_per_minute: int = Field(20, ge=1, description=(
        "Login attempts accepted from one address per minute; more get 'too many requests'."))
    page_size: int = Field(50, ge=10, le=500, description="Rows per page in the message log and the queue.")
    public_url: str = Field("", description=(
        "The console's address as staff open it (https://...), for links in alert emails; empty: no links."))
    summary_at: time = Field(time(7, 30), description="When the daily summary email goes out, clinic time.")
    trusted_proxies: list[str] = Field([], description=(
        "Addresses or networks of the TLS proxies in front of the console (e.g. [\"127.0.0.1\"] or "
        "[\"10.0.0.0/24\"]). Only from these are X-Forwarded-For (the client's address, for the login "
        "rate limit and the audit log) and X-Forwarded-Proto believed; empty: from nobody."))
    max_body_bytes: int = Field(64 * 1024, ge=4 * 1024, le=16 * 1024 * 1024, description=(
        "Largest request body accepted, in bytes (the console's forms are small); larger gets 413 before it is read."))
    password_checks_at_once: int = Field(2, ge=1, le=64, description=(
        "Password checks run at the same time; more logins wait their turn. Each check takes ~64 MB for a "
        "moment (argon2), so this bounds the memory a burst of logins can take."))

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network (e.g. '10.0.0.5' or '10.0.0.0/24')") from None
        return values

    _check_listen = field_validator("listen")(values.listen)
    _check_url = field_validator("public_url")(values.public_url)


class LogConfig(Section):
    """Logging (never patient names, numbers, emails or message bodies)."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest level logged.")
    format: Literal["auto", "json", "console"] = Field("auto", description="'auto': console on a terminal, else JSON.")


class Config(Section):
    """vitalsync configuration."""

    database: DatabaseConfig = DatabaseConfig()
    #: the options of the connector ``type`` names (its own ``Options`` subclass), see connector_config
    connector: SerializeAsAny[ConnectorOptions] = Field(
        default_factory=connector_config.default, description="The practice-management system to read.")
    schedule: ScheduleConfig = ScheduleConfig()
    locations: dict[str, LocationConfig] = Field({}, description="Per-location overrides, [locations.KEY].")
    daemon: DaemonConfig = DaemonConfig()
    sync: SyncConfig = SyncConfig()
    message_kinds: MessageKindsConfig = MessageKindsConfig()
    clinic: ClinicConfig = ClinicConfig()
    replies: RepliesConfig = RepliesConfig()
    sender: SenderConfig = SenderConfig()
    twilio: TwilioConfig = TwilioConfig()
    sendgrid: SendGridConfig = SendGridConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    console: ConsoleConfig = ConsoleConfig()
    log: LogConfig = LogConfig()

    _path: Path = PrivateAttr(Path("config.toml").resolve())

    _check_connector = field_validator("connector", mode="before")(connector_config.validate)

    @property
    def path(self) -> Path:
        """The file this config was read from."""
        return self._path

    def relative(self, value: Path | str) -> Path:
        """A path from the file, taken relative to the file's folder."""
        value = Path(value).expanduser()
        return value if value.is_absolute() else self.path.parent / value

    def state(self, value: Path | str) -> Path:
        """A path of state the daemon writes (the SQLite database), taken in ``$STATE_DIRECTORY``.

        Under the systemd unit the config folder (/etc/vitalsync) is read-only and the state
        directory (/var/lib/vitalsync, from ``StateDirectory=``) is the one writable place; systemd
        names it in ``$STATE_DIRECTORY`` (several, colon-separated, when the unit lists several: the
        first is ours). Run by hand, without it, state lives beside the config file as before."""
        value = Path(value).expanduser()
        if value.is_absolute():
            return value
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(state) / value if state else self.path.parent / value


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and keys on any problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (create one: vitalsync config example > {path})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {_describe(error, raw)}" for error in exc.errors()]) from None
    config._path = path.resolve()
    problems = [f"{path}: {problem}" for problem in _cross_checks(config)]
    if problems:
        raise ConfigError(problems)
    return config


def _cross_checks(config: Config) -> list[str]:
    """Checks of one key that depend on another: 'key: what is wrong'."""
    problems = []
    try:
        values.phone(config.clinic.phone, config.connector.default_region)
    except ValueError as exc:
        problems.append(f"clinic.phone: {exc} (region {config.connector.default_region}, [connector] default_region)")
    for key, location in config.locations.items():
        try:
            _check_window(location.window_start or config.schedule.window_start,
                          location.window_end or config.schedule.window_end)
        except ValueError as exc:
            problems.append(f"locations.{key}: {exc}")
    return problems + _unknown_kinds(config)


def _unknown_kinds(config: Config) -> list[str]:
    """Kind names in [schedule] that are neither stock nor enabled: a typo would silently do nothing."""
    known = set(STOCK_KINDS) | set(config.message_kinds.enabled)
    return [f"schedule.{key}: unknown kind {name!r} (known: {', '.join(sorted(known))})"
            for key in ("cap_exempt", "priority") for name in getattr(config.schedule, key) if name not in known]


def _describe(error: dict, raw: dict) -> str:
    loc = error["loc"]
    key = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent = _model_at(tuple(loc[:-1]), raw)
        allowed = ", ".join(parent.model_fields) if parent else ""
        return f"{key}: unknown key" + (f" (allowed here: {allowed})" if allowed else "")
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}"


def _model_at(loc: tuple, raw: dict) -> type[BaseModel] | None:
    """The model of the table at ``loc``, for naming its keys; [connector] is its connector's Options."""
    model: type[BaseModel] = Config
    if loc[:1] == ("connector",):
        try:
            model, loc = connector_config.options_class(raw["connector"]["type"]), loc[1:]
        except (KeyError, TypeError, ValueError):
            return None
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            if model is LocationConfig or model is Config:
                continue
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif str(part) == "locations":
            model = LocationConfig
        else:
            return None
    return model
