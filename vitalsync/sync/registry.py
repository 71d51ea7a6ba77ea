"""Connectors by name: the entry-point group ``vitalsync.connectors``, loaded lazily.

The lookup itself is core's (:mod:`vitalsync.core.connector_config`), which validates
``[connector]`` against the same entry point's ``Options`` when the config loads.
"""

from __future__ import annotations

from vitalsync.core.connector_config import GROUP, entry_point, installed
from vitalsync.core.errors import PersonMustAct

__all__ = ["GROUP", "available", "connector_class"]


def available() -> list[str]:
    return installed()


def connector_class(name: str):
    found = entry_point(name)
    if found is None:
        raise PersonMustAct(f"no connector named '{name}' is installed (installed: {', '.join(available()) or 'none'})")
    return found.load()
