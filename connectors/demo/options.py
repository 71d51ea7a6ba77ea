"""``[connector] type = "demo"``: the synthetic practice's size and seed."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from vitalsync.sync.connector import ConnectorOptions


class DemoOptions(ConnectorOptions):
    """A synthetic practice: two locations, families, Spanish speakers, changes between syncs."""

    seed: int = Field(7, description="The seed of the synthetic practice (same seed, same practice).")
    start: date | None = Field(None, description="The practice's first day; empty means today.")
    patients: int = Field(400, ge=10, le=100_000, description="How many patients.")
    weeks: int = Field(6, ge=1, le=52, description="How many weeks of appointments.")
