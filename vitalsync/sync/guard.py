"""The mass-removal guard: an empty export must not cancel a day's reminders."""

from __future__ import annotations

from dataclasses import dataclass

from vitalsync.core.errors import SyncHeld


@dataclass(frozen=True)
class RemovalGuard:
    max_share: float = 0.25  #: hold when more than this share of upcoming appointments would go
    min_upcoming: int = 20  #: below this many upcoming appointments the guard stays quiet

    def check(self, upcoming: int, removing: int) -> None:
        """Raise SyncHeld when removing ``removing`` of ``upcoming`` appointments is implausible."""
        if upcoming < self.min_upcoming or removing <= self.max_share * upcoming:
            return
        raise SyncHeld(
            f"sync held: it would cancel or delete {removing} of {upcoming} upcoming appointments "
            f"(more than {self.max_share:.0%}); check the PMS export, then run `vitalsync sync --force`")
