"""``vitalsync run``: APScheduler calls the step functions; SIGTERM lets the current step finish.

Each job runs at most one at a time. A step that fails is logged and tried at its next turn, so a
PMS or network outage never stops the service; systemd is told when we are ready and pinged by
the watchdog only while the scheduler is alive.
"""

from __future__ import annotations

import signal
import threading
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from vitalsync.app.console_server import alert_step, start_console
from vitalsync.app.runtime import Runtime
from vitalsync.app.senders import start_webhooks
from vitalsync.core import systemd
from vitalsync.core.errors import VitalsyncError
from vitalsync.mirror.refresh import pushed_sink

log = structlog.get_logger("vitalsync.daemon")


def run_once(runtime: Runtime, stop: threading.Event | None = None) -> bool:
    """Every stage once, in flow order (``vitalsync run --once``); a stop stops between stages.

    True when every stage that ran succeeded (a failed one is logged and the others still run)."""
    ok = True
    for name, step in _steps(runtime).items():
        if stop is not None and stop.is_set():
            break
        ok = _guarded(name, step)() and ok
    return ok


def _steps(runtime: Runtime) -> dict:
    return {
        "sync": runtime.sync_once,
        "plan": runtime.plan_once,
        "dispatch": lambda: _drain(runtime),
        "reconcile": runtime.reconcile_once,
        "status": runtime.status_once,
        "write_back": runtime.write_back_once,
        "inbox": runtime.inbox_once,
    }


def _drain(runtime: Runtime) -> None:
    """Dispatch until a pass claims less than a full batch (no more work is due)."""
    while runtime.dispatch_once().claimed >= runtime.config.daemon.batch_size:
        pass


def _guarded(name: str, step):
    def job() -> bool:
        try:
            step()
            return True
        except VitalsyncError as exc:
            log.error("step_failed", job=name, error_type=type(exc).__name__)
        except Exception as exc:  # a bug or an outage: keep the service alive, try at the next turn
            log.exception("step_crashed", job=name, error_type=type(exc).__name__)
        return False
    return job


def run_forever(runtime: Runtime) -> int:
    config = runtime.config.daemon
    steps = _steps(runtime)
    scheduler = BackgroundScheduler(timezone=ZoneInfo(runtime.config.schedule.timezone),
                                    job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300})
    scheduler.add_job(_guarded("full_sync", lambda: runtime.sync_once(full=True)), CronTrigger(
        hour=config.full_sync_at.hour, minute=config.full_sync_at.minute), id="full_sync")
    scheduler.add_job(_guarded("sync", steps["sync"]), IntervalTrigger(minutes=config.incremental_sync_minutes), id="sync")
    scheduler.add_job(_guarded("plan", steps["plan"]), IntervalTrigger(minutes=config.plan_minutes), id="plan")
    scheduler.add_job(_guarded("dispatch", steps["dispatch"]), IntervalTrigger(seconds=config.dispatch_seconds), id="dispatch")
    scheduler.add_job(_guarded("status", steps["status"]), IntervalTrigger(seconds=config.dispatch_seconds), id="status")
    scheduler.add_job(_guarded("write_back", steps["write_back"]), IntervalTrigger(seconds=config.dispatch_seconds),
                      id="write_back")
    scheduler.add_job(_guarded("inbox", steps["inbox"]), IntervalTrigger(seconds=config.dispatch_seconds), id="inbox")
    scheduler.add_job(_guarded("reconcile", steps["reconcile"]), IntervalTrigger(minutes=config.plan_minutes), id="reconcile")
    if runtime.config.console.enabled:
        scheduler.add_job(_guarded("alerts", alert_step(runtime)), IntervalTrigger(minutes=config.plan_minutes), id="alerts")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # start with every stage once, in order, then the schedule takes over. A thread of its own, not a
    # one-off scheduler job: APScheduler 3 raises JobLookupError in its thread when shutdown() races
    # the removal of a one-off job that has just been submitted (SIGTERM right after the start).
    initial = threading.Thread(target=run_once, args=(runtime, stop), name="vitalsync-initial")
    pushing = callable(getattr(runtime.connector, "start", None)) and callable(getattr(runtime.connector, "stop", None))
    if pushing:  # a push source (HL7) applies each message to the mirror as it arrives
        runtime.connector.start(sink=pushed_sink(runtime.engine, runtime.clock))
    webhooks = start_webhooks(runtime.config, runtime.engine, runtime.clock)
    console = start_console(runtime.config, runtime.engine, runtime.clock)
    scheduler.start()
    initial.start()
    systemd.ready()
    log.info("daemon_started", job="all")
    ping = systemd.watchdog_interval() or 30.0
    while not stop.wait(timeout=min(ping, 30.0)):
        if scheduler.running:
            systemd.watchdog_ping()
    systemd.stopping()
    log.info("daemon_stopping", job="all")
    scheduler.shutdown(wait=True)  # the step under way finishes; no send is cut in half
    if pushing:
        runtime.connector.stop()  # the message in progress is stored and acknowledged first
    if webhooks is not None:
        webhooks.stop()
    if console is not None:
        console.stop()
    initial.join()
    runtime.engine.dispose()
    log.info("daemon_stopped", job="all")
    return 0


