"""Every line goes through the allow-listed structured log: other libraries' loggers and
uncaught exceptions in threads give their type, never their text or a traceback."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading

import pytest
import structlog

from vitalsync.core import log

CANARY = "Zebediah Quonsett +12125550147"


@pytest.fixture
def stream():
    out = io.StringIO()
    root, hooks = list(logging.getLogger().handlers), (sys.excepthook, threading.excepthook, sys.unraisablehook)
    log.setup("info", "json", stream=out)
    yield out
    structlog.reset_defaults()
    for handler in logging.getLogger().handlers:
        if handler not in root:
            logging.getLogger().removeHandler(handler)
    sys.excepthook, threading.excepthook, sys.unraisablehook = hooks
    logging.captureWarnings(False)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_library_records_keep_their_template_and_exception_type_only(stream):
    try:
        raise RuntimeError(f"INSERT INTO reply VALUES ('{CANARY}')")
    except RuntimeError:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=True)
    logging.getLogger("apscheduler.executors.default").error('Job "%s" raised an exception', CANARY)
    logging.getLogger("twilio.http_client").warning(f"PostParams: {{'To': '{CANARY}'}}")  # pre-formatted: dropped
    assert CANARY.split()[0] not in stream.getvalue() and "5550147" not in stream.getvalue()
    assert [(line["event"], line.get("logger"), line.get("error_type")) for line in lines(stream)] == [
        ("Exception in ASGI application", "uvicorn.error", "RuntimeError"),
        ('Job "%s" raised an exception', "apscheduler.executors.default", None),
        ("library_log", "twilio.http_client", None)]


def test_an_uncaught_exception_in_a_thread_is_one_line_with_its_type(stream):
    def crash():
        raise ValueError(CANARY)

    thread = threading.Thread(target=crash)
    thread.start()
    thread.join()
    assert "Zebediah" not in stream.getvalue()
    assert [(line["event"], line["error_type"]) for line in lines(stream)] == [("uncaught_exception", "ValueError")]
