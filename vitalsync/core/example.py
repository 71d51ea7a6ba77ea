"""Writes ``config.example.toml`` from the config models, a description above every key.

``[connector]`` shows the demo's options, then, commented out, those of every other connector
installed (the stock ones, and any installed separately), each from its own ``Options``.
"""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path

from pydantic import BaseModel

from vitalsync.core import connector_config
from vitalsync.core.config import Config, LocationConfig

HEADER = """\
# vitalsync configuration. Generated from the schema: `vitalsync config example > config.toml`.
# Every key is optional; the value shown is the default. Unknown keys are errors.
# Secrets (database password, API keys) never go here: see [database] password_file.
"""


def generate() -> str:
    parts = [HEADER]
    for name, field in Config.model_fields.items():
        if name == "locations":
            parts.append(_section("locations.1", LocationConfig, LocationConfig(), commented=True))
            continue
        if name == "connector":
            parts.extend(_connectors())
            continue
        model = field.annotation
        parts.append(_section(name, model, field.default, commented=False))
    return "\n".join(parts)


def _connectors() -> list[str]:
    demo = connector_config.default()
    parts = [_section("connector", type(demo), demo, commented=False)]
    for kind in connector_config.installed():
        if kind == "demo":
            continue
        try:
            model = connector_config.options_class(kind)
        except ValueError as exc:  # e.g. its optional dependency is missing here
            parts.append(f"# [connector] type = {_toml(kind)}: {exc}\n")
            continue
        parts.append(_section("connector", model, model.model_construct(type=kind), commented=True))
    return parts


def _section(name: str, model: type[BaseModel], value: BaseModel, *, commented: bool) -> str:
    prefix = "# " if commented else ""
    lines = [f"# {(model.__doc__ or '').strip()}", f"{prefix}[{name}]"]
    for key, field in sorted(model.model_fields.items(), key=lambda item: item[0] != "type"):
        lines.append(f"# {field.description}")
        current = getattr(value, key, None)
        if current is None:
            lines.append(f"# {key} = ")
            continue
        lines.append(f"{prefix}{key} = {_toml(current)}")
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, (time, date)):
        return value.isoformat()
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def write(path: Path) -> None:
    path.write_text(generate(), encoding="utf-8")
