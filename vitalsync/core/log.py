"""Structured logs that carry no patient data.

Events are constant names with structured fields. A processor keeps only fields on an allowlist
and drops the rest, so a name, a phone number, an email address or a message body cannot reach a
log line by accident; exception text is dropped too, because provider errors echo phone numbers
and database errors their statement's values.

Everything else that would write a line goes the same way (:func:`setup`): the standard library's
``logging`` (uvicorn's error and access loggers, APScheduler, asyncio, warnings) is handed to
structlog by :class:`FromLogging`, which keeps the logger's name, the level, the exception's type
and — for the libraries below, whose messages are constant templates — the template without its
values; and an uncaught exception in any thread is one line with its type, never a traceback.
"""

from __future__ import annotations

import logging
import sys
import threading

import structlog

ALLOWED = frozenset({
    "event", "level", "timestamp", "logger", "mode", "outcome", "rows", "changed", "removed", "rejected",
    "seconds", "queued", "cancelled", "decisions", "claimed", "sent", "deferred", "dropped", "failed",
    "retried", "unsure", "intent", "matched", "needs_staff", "source", "job", "deliveries", "replies",
    "day", "kind", "count", "error_type", "version", "config", "database", "connector", "next_run",
    "message_id", "user_id", "channel",  # internal ids and sms/email/voice: no patient data
    "request_id", "inbox_id", "attempts", "pending", "flagged", "duplicates",  # random or internal ids, counts
})
#: Libraries whose log messages are constant %-templates (values come as arguments, which are dropped):
#: their template is kept as the event. Any other library's message is dropped, as it may be pre-formatted.
TEMPLATE_LOGGERS = ("uvicorn", "apscheduler")
TEMPLATE_LENGTH = 120

log = structlog.get_logger("vitalsync.log")


def keep_allowed(_logger, _method, event: dict) -> dict:
    """Drop every field not on the allowlist (the allowlist is how PHI stays out)."""
    return {key: value for key, value in event.items() if key in ALLOWED}


class FromLogging(logging.Handler):
    """Standard-library records as structlog events: logger name, level, exception type, and (for
    :data:`TEMPLATE_LOGGERS`) the message's template; never its arguments, text or traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = "library_log"
            if record.name.split(".")[0] in TEMPLATE_LOGGERS and isinstance(record.msg, str) and record.msg.strip():
                event = record.msg.strip().splitlines()[0][:TEMPLATE_LENGTH]
            fields = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["error_type"] = record.exc_info[0].__name__
            method = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}.get(record.levelno, "error")
            getattr(structlog.get_logger(), method)(event, **fields)
        except Exception:  # noqa: BLE001 - logging must never raise; and handleError would print the record
            pass


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
    capture_everything()


def capture_everything() -> None:
    """Route the standard library's logging, warnings and uncaught exceptions through structlog (idempotent).

    Other libraries' info lines are not ours to keep (twilio's client logs each request's parameters
    at INFO): the root logger passes warnings and above."""
    root = logging.getLogger()
    if not any(isinstance(handler, FromLogging) for handler in root.handlers):
        root.addHandler(FromLogging())  # and with a handler there, logging's last resort (a traceback on stderr) is unused
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = lambda args: _uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                                                  thread=True)
    sys.unraisablehook = lambda unraisable: log.error("unraisable_exception",
                                                      error_type=type(unraisable.exc_value).__name__)


def _uncaught(exc_type, _value, _traceback, *, thread: bool = False) -> None:
    if exc_type is not None and issubclass(exc_type, SystemExit):
        return
    log.error("uncaught_exception", error_type=getattr(exc_type, "__name__", "?"), source="thread" if thread else "main")
