"""Templates and the small things they need: local times (with their zone), rates, the report's chart as inline SVG."""

from __future__ import annotations

from importlib.resources import files
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from vitalsync.core.times import FORMAT, shown

BAR_COLOURS = {"received_rate": "#8a97a8", "confirm_rate": "#2e7d32", "decline_rate": "#c62828"}


def environment(zone: ZoneInfo) -> Environment:
    env = Environment(loader=FileSystemLoader(str(files("vitalsync.console") / "templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def local(value, fmt: str = FORMAT) -> str:
        """The clinic's local time with its zone's abbreviation ("2026-03-04 09:00 EST")."""
        return shown(value, zone, fmt)

    env.filters["local"] = local
    env.filters["rate"] = lambda value: "" if value is None else f"{value:.0%}"
    env.globals["chart"] = chart
    env.globals["zone_name"] = zone.key  #: what a time typed into a form means: the clinic's time
    return env


def chart(rows: list[dict], width: int = 640) -> dict:
    """Bars of received, confirm and decline rates per kind, laid out for the template's <svg>."""
    label_w, bar_h, gap = 190, 12, 14
    scale = width - label_w - 50
    groups, y = [], 10
    for row in rows:
        bars = []
        for i, (key, colour) in enumerate(BAR_COLOURS.items()):
            value = row.get(key) or 0.0
            bars.append({"x": label_w, "y": y + i * bar_h, "w": round(value * scale, 1), "h": bar_h - 2,
                         "colour": colour, "label": f"{value:.0%}", "tx": label_w + round(value * scale, 1) + 4})
        groups.append({"kind": row["kind"], "y": y + bar_h * 1.5 + 4, "bars": bars})
        y += bar_h * 3 + gap
    return {"width": width, "height": y + 24, "groups": groups, "legend_y": y + 10,
            "legend": [("received", BAR_COLOURS["received_rate"]), ("confirmed", BAR_COLOURS["confirm_rate"]),
                       ("declined", BAR_COLOURS["decline_rate"])]}
