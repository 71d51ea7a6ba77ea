"""Per-sender rate limits: a sender never hands its provider more than ``rate`` units a second.

A carrier counts a sender's throughput per second (Twilio's MPS counts SMS *segments*; calls are
limited in calls per second), and Twilio queues what arrives faster, for up to hours, so a burst
now is a late reminder later. The pacer therefore spaces units evenly (GCRA, the "virtual
scheduling" form of a token bucket with a bucket of one): each caller reserves the next free slot
under a lock, then sleeps until it, outside the lock. Threads of one process share one pacer per
sending number, so together they never exceed its rate; a send of ``n`` units (segments) takes
``n`` slots.

The limit holds within one process. Several `vitalsync run` processes sending from the same number
each keep their own pacer, so their rates add up: give each ``rate / processes`` (see README).

Why not ``limits`` or ``pyrate-limiter``: both answer "may I now?" against the wall clock they
read themselves (pyrate-limiter 4 blocks with ``time.sleep``); what a sender needs is "wait for my
slot", evenly spaced, with a clock the tests can drive. That is the dozen lines below.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    def __init__(self, rate: float, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not rate > 0:
            raise ValueError("a rate limit must be a positive number of units per second")
        self.rate = rate
        self.interval = 1.0 / rate
        self._now, self._sleep = now, sleep
        self._lock = threading.Lock()
        self._next = float("-inf")  #: the earliest moment the next unit may go

    def wait(self, units: int = 1) -> float:
        """Block until ``units`` may go without exceeding the rate; return the seconds waited."""
        with self._lock:
            now = self._now()
            start = max(now, self._next)
            self._next = start + units * self.interval
        # the next caller waits for the slots after these units; this one goes at the first of them
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay
