"""Structured logs that carry no patient data.

Events are constant names with structured fields. A processor keeps only fields on an allowlist
and drops the rest, so a name, a phone number, an email address or a message body cannot reach a
log line by accident; exception text is dropped too, because provider errors echo phone numbers.
"""

from __future__ import annotations

import logging
import sys

import structlog

ALLOWED = frozenset({
    "event", "level", "timestamp", "logger", "mode", "outcome", "rows", "changed", "removed", "rejected",
    "seconds", "queued", "cancelled", "decisions", "claimed", "sent", "deferred", "dropped", "failed",
    "retried", "unsure", "intent", "matched", "needs_staff", "source", "job", "deliveries", "replies",
    "day", "kind", "count", "error_type", "version", "config", "database", "connector", "next_run",
    "message_id", "user_id", "channel",  # internal ids and sms/email/voice: no patient data
})


def keep_allowed(_logger, _method, event: dict) -> dict:
    """Drop every field not on the allowlist (the allowlist is how PHI stays out)."""
    return {key: value for key, value in event.items() if key in ALLOWED}


def setup(level: str = "info", fmt: str = "auto", stream=None) -> None:
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer = structlog.dev.ConsoleRenderer(colors=False) if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            keep_allowed,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
