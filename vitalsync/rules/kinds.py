"""Message kinds: what to send, to whom, when and how — TOML files read and checked at start-up.

The stock kinds are data in the package ``vitalsync_message_kinds`` (the ``message_kinds/`` folder);
a file ``<name>.toml`` in the site's folder replaces the stock kind of that name. The schema of a file
is documented in ``message_kinds/README.md``.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vitalsync.core.errors import ConfigError
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.rules.templates import check_templates

_OFFSET = re.compile(r"([+-]?)(\d{1,4})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Trigger(StrEnum):
    APPOINTMENT_START = "appointment_start"
    APPOINTMENT_END = "appointment_end"
    APPOINTMENT_MOVED = "appointment_moved"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    RECALL_DUE = "recall_due"
    PICKUP_READY = "pickup_ready"
    MANUAL = "manual"


def parse_offset(text: str) -> timedelta:
    """ "-2d" → two days before, "+30m" → thirty minutes after, "0m" → at the moment itself."""
    match = _OFFSET.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not an offset: write a sign, a whole number and a unit "
                         "(m, h, d or w), such as '-2d', '-3h', '+30m', '0m' or '+1w'")
    sign, number, unit = match.groups()
    delta = timedelta(**{_UNITS[unit]: int(number)})
    return -delta if sign == "-" else delta


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filters(Strict):
    locations: list[str] = []
    providers: list[str] = []
    appointment_types: list[str] = []
    statuses: list[AppointmentStatus] = [AppointmentStatus.SCHEDULED]

    def matches(self, appointment) -> bool:
        """Whether the appointment passes every filter; an empty list lets anything through."""
        return all(not allowed or value in allowed for allowed, value in (
            (self.locations, appointment.location_key), (self.providers, appointment.provider_key),
            (self.appointment_types, appointment.type), (self.statuses, appointment.status)))


class EmailTemplate(Strict):
    subject: str
    text: str
    html: str | None = None


class Templates(Strict):
    sms: dict[str, str] = {}
    voice: dict[str, str] = {}
    email: dict[str, EmailTemplate] = {}


class MessageKind(Strict):
    name: str
    title: str
    description: str
    trigger: Trigger
    offsets: list[timedelta] = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    asks_reply: bool = False
    stop_on: list[Literal["confirmed", "declined"]] = []
    group_family: bool = False
    late_grace: timedelta = timedelta(hours=1)
    #: a send time that passed before first planning still goes while the trigger lies ahead (rules/plan.py)
    catch_up: bool = False
    filters: Filters = Filters()
    templates: Templates
    source: Path

    @field_validator("offsets", mode="before")
    @classmethod
    def _offsets(cls, value):
        if not isinstance(value, list):
            return value
        return [item if isinstance(item, timedelta) else parse_offset(item) for item in value]

    @field_validator("late_grace", mode="before")
    @classmethod
    def _late_grace(cls, value):
        grace = value if isinstance(value, timedelta) else parse_offset(value)
        if grace < timedelta(0):
            raise ValueError(f"{value!r} is negative: write how long a late message may still go, such as '1h'")
        return grace

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice (the list is the fallback order)")
        return value

    @model_validator(mode="after")
    def _cancellations_see_cancelled(self) -> MessageKind:
        if self.trigger is Trigger.APPOINTMENT_CANCELLED and AppointmentStatus.CANCELLED not in self.filters.statuses:
            raise ValueError("filters.statuses: an appointment_cancelled kind needs 'cancelled' here, "
                             "or it never sends anything")
        return self

    @model_validator(mode="after")
    def _manual_offsets_ahead(self) -> MessageKind:
        if self.trigger is Trigger.MANUAL and any(offset < timedelta(0) for offset in self.offsets):
            raise ValueError("offsets: a manual kind's offsets count from the moment staff start the group "
                             "send, so they cannot be negative (use '0m' for at once)")
        return self


def load_kinds(enabled: list[str], site_dir: Path | None = None) -> dict[str, MessageKind]:
    """The enabled kinds by name, site files replacing stock ones; one ConfigError lists every problem."""
    if site_dir is not None and not site_dir.is_dir():
        raise ConfigError(f"message_kinds.directory: {site_dir}: no such folder")
    found = {p.name.removesuffix(".toml"): (Path(str(p)), f"message_kinds/{p.name}")
             for p in files("vitalsync_message_kinds").iterdir() if p.name.endswith(".toml")}
    if site_dir is not None:
        found |= {p.stem: (p, str(p)) for p in sorted(site_dir.glob("*.toml"))}
    problems, kinds = [], {}
    for name in enabled:
        if name not in found:
            problems.append(f"message_kinds.enabled: unknown kind {name!r} (available: {', '.join(sorted(found))})")
            continue
        path, display = found[name]
        kind, errors = _load(name, path, display)
        problems += errors
        if kind is not None:
            kinds[name] = kind
    if problems:
        raise ConfigError(problems)
    return kinds


def _load(name: str, path: Path, display: str) -> tuple[MessageKind | None, list[str]]:
    try:
        raw = path.read_text(encoding="utf-8")
        data = tomllib.loads(raw)
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{display}: cannot read: {exc}"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{display}: not valid TOML: {exc}"]
    set_by_loader = [f"{display}:{_key_line(raw, [key])}: {key}: unknown key (the loader sets it)"
                     for key in ("name", "source") if key in data]
    if set_by_loader:
        return None, set_by_loader
    try:
        kind = MessageKind.model_validate(data | {"name": name, "source": path})
    except ValidationError as exc:
        return None, [_describe(error, raw, display) for error in exc.errors()]
    return kind, check_templates(kind, raw, display)


def _describe(error: dict, raw: str, display: str) -> str:
    loc = [str(part) for part in error["loc"]]
    line = _key_line(raw, loc)
    where = f"{display}:{line}" if line else display
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        parent = _PARENTS.get(tuple(loc[:-1]), EmailTemplate if loc[:2] == ["templates", "email"] else None)
        keys = [key for key in parent.model_fields if key not in ("name", "source")] if parent else []
        message = "unknown key" + (f" (allowed here: {', '.join(keys)})" if keys else "")
    return f"{where}: {'.'.join(loc)}: {message}" if loc else f"{where}: {message}"


_PARENTS = {(): MessageKind, ("filters",): Filters, ("templates",): Templates}


def _key_line(raw: str, loc: list[str]) -> int | None:
    """The line of the deepest key of ``loc`` found, each searched for after its parent (a table or a key)."""
    start, line = 0, None
    for key in (part for part in loc if not part.isdigit()):
        k = re.escape(key)  # a table header naming the key, or the key (maybe dotted) before "="
        pattern = rf'^[ \t]*(?:\[[^\]]*\b{k}\b[^\]]*\]|(?:[\w"-]+\s*\.\s*)*"?{k}"?\s*=)'
        match = re.compile(pattern, re.MULTILINE).search(raw, start)
        if not match:
            break
        start, line = match.start(), raw.count("\n", 0, match.start()) + 1
    return line
