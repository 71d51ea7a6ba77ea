"""Connectors by name: the entry-point group ``vitalsync.connectors``, loaded lazily."""

from __future__ import annotations

from importlib.metadata import entry_points

from vitalsync.core.errors import PersonMustAct

GROUP = "vitalsync.connectors"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def connector_class(name: str):
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()
    raise PersonMustAct(f"no connector named '{name}' is installed (installed: {', '.join(available()) or 'none'})")
