"""Minimal sd_notify(3) client (stdlib only) for Type=notify units with WatchdogSec=."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to $NOTIFY_SOCKET.

    Returns False when not running under systemd (no/unsupported NOTIFY_SOCKET)
    or when sending fails; never raises, so callers need no guard.
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True


def ready() -> bool:
    """Tell systemd start-up is finished (READY=1)."""
    return notify("READY=1")


def stopping() -> bool:
    """Tell systemd a clean shutdown has begun (STOPPING=1)."""
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    """Reset the service watchdog timer (WATCHDOG=1)."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """Set the one-line status shown by ``systemctl status`` (STATUS=...)."""
    return notify("STATUS=" + " ".join(text.splitlines()))


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings: half of $WATCHDOG_USEC.

    None when the watchdog is disabled, the value is invalid, or
    $WATCHDOG_PID names another process (the variable was inherited).
    """
    pid = os.environ.get("WATCHDOG_PID")
    try:
        if pid and int(pid) != os.getpid():
            return None
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None
