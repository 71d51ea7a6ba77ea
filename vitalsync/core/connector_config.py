"""The ``[connector]`` section: the shared base every connector's options extend, validated in two steps.

Each connector owns its options: a :class:`ConnectorOptions` subclass in its own package, named by
the connector class's ``Options`` attribute (see :class:`vitalsync.sync.connector.Connector`).
Validation reads ``type``, finds the connector of that name in the entry-point group
``vitalsync.connectors`` and validates the rest of the section against its ``Options``, so a
connector installed from another distribution is configured exactly like a stock one and core
lists none of them.

Core looks the entry point up itself, through :mod:`importlib.metadata`, rather than leaving the
second step to a later stage: ``load_config`` then stays the one place that turns a file into a
valid :class:`~vitalsync.core.config.Config`, with every mistake named by file and key, for every
caller (the CLI, the demo, benchmarks, tests). Core imports no connector and no stage above it: it
knows only the group's name, and the connector it loads imports the contract, not the reverse. The
sync stage's registry (:mod:`vitalsync.sync.registry`) finds connector classes through
:func:`entry_point` here.

Passwords, tokens and API keys never sit here: each connector names the secret it reads (a
``*_file`` key, ``VITALSYNC_<NAME>`` or the systemd credential ``<name>``).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from vitalsync.core import values

GROUP = "vitalsync.connectors"


class ConnectorOptions(BaseModel):
    """The keys every connector has; a connector's ``Options`` subclass adds its own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description=(
        "The connector: demo, opendental, odbc, csv, hl7, fhir, or one installed separately (connectors/README.md)."))
    timezone: str | None = Field(None, description=(
        "The zone of the PMS's local times; empty means [schedule] timezone."))
    default_region: str = Field("US", description="Region for phone numbers written without a country code (ISO 3166).")

    _check_region = field_validator("default_region")(values.region)


def installed() -> list[str]:
    """The names ``[connector] type`` may take: every connector installed in this environment."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def entry_point(name: str) -> EntryPoint | None:
    """The installed connector called ``name``, not yet loaded."""
    return next(iter(entry_points(group=GROUP, name=name)), None)


@cache
def options_class(name: str) -> type[ConnectorOptions]:
    """The ``Options`` of the connector called ``name``; ValueError saying why there is none."""
    found = entry_point(name)
    if found is None:
        raise ValueError(f"no connector named {name!r} is installed (installed: {', '.join(installed()) or 'none'})")
    try:
        connector = found.load()
    except ImportError as exc:  # its optional dependency is missing: say which
        raise ValueError(f"the {name!r} connector is installed but cannot be loaded: {exc} "
                         f"(for a stock connector: pip install 'vitalsync[{name}]')") from None
    options = getattr(connector, "Options", None)
    if not (isinstance(options, type) and issubclass(options, ConnectorOptions)):
        raise ValueError(f"the {name!r} connector ({found.value}) declares no Options (a ConnectorOptions subclass)")
    return options


def validate(section: object) -> ConnectorOptions:
    """A ``[connector]`` table as its connector's ``Options``: read ``type``, then validate the rest.

    Raises pydantic's ValidationError with locations inside the section (``type``, ``url``), so it
    reads like any other section's errors when raised inside ``Config``'s validation.
    """
    if isinstance(section, ConnectorOptions):
        return section
    if not isinstance(section, dict):
        raise _error((), "must be a table: [connector] with a type and the connector's keys", section)
    name = section.get("type")
    if name is None:
        raise _error(("type",), f"missing: name the connector (installed: {', '.join(installed()) or 'none'})", section)
    if not isinstance(name, str):
        raise _error(("type",), f"{name!r} is not a connector name (installed: {', '.join(installed())})", name)
    try:
        options = options_class(name)
    except ValueError as exc:
        raise _error(("type",), str(exc), name) from None
    return options.model_validate(section)


def default() -> ConnectorOptions:
    """The options of a config without ``[connector]``: the demo practice."""
    return validate({"type": "demo"})


def _error(loc: tuple, message: str, value: object) -> ValidationError:
    detail = InitErrorDetails(type=PydanticCustomError("connector", message), loc=loc, input=value)
    return ValidationError.from_exception_data("connector", [detail])


def writes_back(options: BaseModel) -> bool:
    """Whether the ``[connector]`` section turns write-back on (only connectors that can have the key)."""
    return bool(getattr(options, "write_back", False))
