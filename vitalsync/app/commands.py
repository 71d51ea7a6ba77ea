"""What each CLI command does, given its parsed arguments."""

from __future__ import annotations

import shutil
import sys
from zoneinfo import ZoneInfo

from vitalsync.console import queries
from vitalsync.app.output import LOG_COLUMNS, Progress, emit
from vitalsync.core.config import load_config
from vitalsync.core.log import setup
from vitalsync.core.times import shown


def dispatch(args) -> int:
    if args.command == "config":
        from vitalsync.core.example import generate
        sys.stdout.write(generate())
        return 0
    if args.command == "demo":
        return demo(args)
    config = load_config(args.config)
    setup(config.log.level, config.log.format)
    if args.command == "check":
        from vitalsync.app.check import check
        return check(config)
    if args.command == "user":
        from vitalsync.app.users import user_command
        return user_command(config, args)
    from vitalsync.app.runtime import build
    runtime = build(config)
    return COMMANDS[args.command](runtime, args)


def demo(args) -> int:
    from vitalsync.app.demo import describe_catch_ups, run_demo
    setup("warning", "auto")
    result = run_demo(args.home, args.days, args.seed, args.start.date() if args.start else None,
                      progress=Progress(f"Simulating {args.days} days"), force=args.force)
    config = result.config_path
    me = "vitalsync" if shutil.which("vitalsync") else sys.argv[0]
    print(f"\nDemo practice simulated for {result.days} days from {result.start} (seed {args.seed}).\n")
    emit(queries.report(result.runtime.engine, queries.Filter()), "table",
         ["kind", "planned", "sent", "received", "not_received", "confirmed", "declined", "pending", "cancelled", "skipped", "failed"])
    if catch_ups := describe_catch_ups(result):
        print("\n" + "\n".join(catch_ups))
    print(f"""
Home: {result.home}{'' if args.home else '  (temporary; pass --home DIR to keep it)'}
Next:
  {me} log --config {config}                      the message log
  {me} log --config {config} --format json        with each message's full history
  {me} report --config {config}                   confirm / decline rates per kind
  {me} why --config {config} --appointment KEY    why an appointment got what it got
  {me} queue --config {config}                    what is still to be sent""")
    if not args.serve:
        print("  the front desk's console in a browser: run the demo again with --serve (./scripts/demo --serve)")
    if args.serve:
        from vitalsync.app.users import serve_demo
        return serve_demo(result, args.listen)
    return 0


def _filter(args, zone: ZoneInfo) -> queries.Filter:
    return queries.Filter(kind=args.kind, status=getattr(args, "status", None), channel=args.channel,
                        since=_clinic(args.since, zone), until=_clinic(args.until, zone), patient=args.patient)


def _clinic(value, zone: ZoneInfo):
    """A time typed without a zone is the clinic's time (as on the console), not the machine's."""
    return value.replace(tzinfo=zone) if value is not None and value.tzinfo is None else value


def run(runtime, args) -> int:
    from vitalsync.app.daemon import run_forever, run_once
    if args.once:
        if run_once(runtime):
            return 0
        print("error: a step failed (its name is in the log line 'step_failed' or 'step_crashed')", file=sys.stderr)
        return 1
    return run_forever(runtime)


def sync(runtime, args) -> int:
    progress = Progress("Syncing")
    progress(0, 1)
    try:
        report = runtime.sync_once(full=args.full, force=args.force)
    finally:
        progress(1, 1)
        if report is not None:
            emit(queries.sync_runs(runtime.engine, 1), "table", ["mode", "outcome", "rows_read", "changed", "removed", "rejected", "seconds"])
    if report is None:
        print("another vitalsync process is syncing now; not synced (try again when it is done)")
        return 1
    if report.detail:
        print(f"rejected rows: {report.detail}")
    return 0 if report.outcome == "ok" else 1


def plan(runtime, args) -> int:
    if args.dry_run:
        from vitalsync.app.preview import dry_run
        return dry_run(runtime, args.kinds_dir, args.format)
    if args.kinds_dir:
        print("error: --kinds-dir only previews (with --dry-run); to use the kinds, set [message_kinds] directory",
              file=sys.stderr)
        return 2
    report = runtime.plan_once()
    if report is None:
        print("another vitalsync process is planning now; not planned (try again when it is done)")
        return 1
    print(f"queued {report.queued}, cancelled {report.cancelled}, decisions recorded {report.decisions}")
    return 0


def dispatch_due(runtime, args) -> int:
    total = 0
    while (report := runtime.dispatch_once()).claimed:
        total += report.sent
        if report.claimed < runtime.config.daemon.batch_size:
            break
    print(f"sent {total}")
    return 0


def _zone(runtime) -> ZoneInfo:
    """The zone a person reads times in: the clinic's."""
    return ZoneInfo(runtime.config.schedule.timezone)


def log(runtime, args) -> int:
    rows = queries.message_log(runtime.engine, _filter(args, _zone(runtime)), history=args.format == "json")
    emit(rows, args.format, LOG_COLUMNS + (["history"] if args.format == "json" else []), zone=_zone(runtime))
    return 0


def report(runtime, args) -> int:
    rows = queries.report(runtime.engine, _filter(args, _zone(runtime)))
    emit(rows, args.format, None if args.format == "json" else [
        "kind", "sent", "received", "not_received", "confirmed", "declined", "skipped", "received_rate", "confirm_rate",
        "decline_rate"])
    return 0


def why(runtime, args) -> int:
    trace = queries.why(runtime.engine, args.appointment)
    if args.format == "json":
        emit([trace], "json")
        return 0
    print(f"Appointment {args.appointment}: decisions")
    emit(trace["decisions"], "table", ["at", "kind", "decision", "reason", "channel", "message"], zone=_zone(runtime))
    print("\nMessages")
    emit(trace["messages"], "table", LOG_COLUMNS, zone=_zone(runtime))
    return 0


def queue(runtime, args) -> int:
    where = _filter(args, _zone(runtime))
    move_to = _clinic(args.move_to, _zone(runtime))
    rows = queries.pending(runtime.engine, where)
    if not (args.cancel or args.move_to):
        emit(rows, args.format, LOG_COLUMNS, zone=_zone(runtime))
        return 0
    verb = "cancel" if args.cancel else f"move to {shown(move_to, _zone(runtime))}"
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"{len(rows)} pending messages match; add --yes to {verb} them", file=sys.stderr)
            return 1
        if input(f"{verb} {len(rows)} pending messages? [y/N] ").strip().lower() != "y":
            return 1
    if args.cancel:
        done = queries.cancel_pending(runtime.engine, where, runtime.clock.now(), "the command line")
    else:
        done = queries.move_pending(runtime.engine, where, move_to)
    print(f"{verb}: {done} messages")
    return 0


def send(runtime, args) -> int:
    from vitalsync.app.send import send as group_send
    return group_send(runtime, args)


COMMANDS = {"run": run, "sync": sync, "plan": plan, "dispatch": dispatch_due, "log": log, "report": report,
            "why": why, "queue": queue, "send": send}
