"""``Memo``: a dict that computes each missing value once, for the sync's hot loops.

A full sync meets the same values over and over (a local time, a phone number, a consent code, the
sync's "now" on every row). Looking one up in a dict, or ``map`` over a column of its
``__getitem__``, stays in C for every value seen before. There are more distinct values than an
LRU cache of sensible size holds, and it would thrash; so the memo is simply cleared when it grows
past ``limit`` entries.
"""

from __future__ import annotations


class Memo(dict):
    def __init__(self, compute, limit: int = 200_000) -> None:
        super().__init__()
        self.compute, self.limit = compute, limit

    def __missing__(self, key):
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.compute(key)
        return value
