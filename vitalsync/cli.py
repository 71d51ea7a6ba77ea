"""The command line. ``vitalsync --help`` lists the commands; each has its own ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from pathlib import Path

from vitalsync import __version__
from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater, SyncHeld

DEFAULT_CONFIG = os.environ.get("VITALSYNC_CONFIG", "/etc/vitalsync/config.toml")
EPILOG = """\
Start here: `vitalsync demo --home ./demo-home` simulates a practice, then every other command
works with `--config ./demo-home/config.toml`. Configuration: `vitalsync config example`.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vitalsync", description=(
        "Sync a practice-management system and send appointment reminders, recalls and notices "
        "by SMS, email and voice; record deliveries, confirmations and declines."), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"vitalsync {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=text, description=text)
        if name not in ("demo", "config"):
            cmd.add_argument("--config", type=Path, default=Path(DEFAULT_CONFIG),
                             help=f"the config file (default {DEFAULT_CONFIG}, or $VITALSYNC_CONFIG)")
        return cmd

    demo = command("demo", "Simulate a practice for some days through the real pipeline, then show the log.")
    demo.add_argument("--home", type=Path, help="keep the demo here (config.toml, vitalsync.db); default: a temporary folder")
    demo.add_argument("--force", action="store_true",
                      help="use --home even when it is not empty and not a demo home (its config and database are replaced)")
    demo.add_argument("--days", type=int, default=3, help="days to simulate (default 3)")
    demo.add_argument("--seed", type=int, default=7, help="the practice and its patients (default 7)")
    demo.add_argument("--start", type=datetime.fromisoformat, help="first simulated day, YYYY-MM-DD (default today)")
    demo.add_argument("--serve", action="store_true",
                      help="then serve the console over the demo data until Ctrl-C (an 'admin' login is made)")
    demo.add_argument("--listen", default="127.0.0.1:8089", help="with --serve: host:port (default 127.0.0.1:8089)")

    run = command("run", "Run the service: nightly full sync, incremental syncs, planning, dispatch.")
    run.add_argument("--once", action="store_true", help="run each stage once, in order, and exit")
    sync = command("sync", "Read the PMS into the mirror and print the sync report.")
    sync.add_argument("--full", action="store_true", help="read everything, not only what changed")
    sync.add_argument("--force", action="store_true", help="apply a sync the mass-removal guard held")
    plan = command("plan", "Plan messages from the mirror (idempotent) and print what changed.")
    plan.add_argument("--dry-run", action="store_true",
                      help="write nothing: print per kind what planning would queue, cancel or move now")
    plan.add_argument("--kinds-dir", type=Path,
                      help="with --dry-run: plan with the kind files in this folder instead of [message_kinds] directory")
    plan.add_argument("--format", choices=["table", "json"], default="table", help="with --dry-run: the output")
    command("dispatch", "Send the messages that are due now.")

    for name, text in (("log", "The message log: every message with its status and history."),
                       ("report", "Per message kind: sent, received, not received, confirmed, declined, rates."),
                       ("queue", "Pending messages; move or cancel any number of them by filter.")):
        cmd = command(name, text)
        cmd.add_argument("--kind", help="only this message kind (e.g. appointment_reminder)")
        cmd.add_argument("--channel", choices=["sms", "email", "voice"], help="only this channel")
        cmd.add_argument("--since", type=_when, help="send time from (YYYY-MM-DD or ISO time; clinic time unless a zone is given)")
        cmd.add_argument("--until", type=_when, help="send time before (YYYY-MM-DD or ISO time; clinic time unless a zone is given)")
        cmd.add_argument("--patient", help="only messages to or about this patient (PMS key)")
        cmd.add_argument("--format", choices=["table", "csv", "json"], default="table")
        if name == "log":
            cmd.add_argument("--status", help="only this status (not_sent, sent, received, ...)")
        if name == "queue":
            action = cmd.add_mutually_exclusive_group()
            action.add_argument("--cancel", action="store_true", help="cancel the matching pending messages")
            action.add_argument("--move-to", type=_when, help="move the matching pending messages to this time (clinic time unless a zone is given)")
            cmd.add_argument("--yes", action="store_true", help="act without asking (needed when not on a terminal)")
    why = command("why", "The decision trace of one appointment: why it got which messages, or none.")
    why.add_argument("--appointment", required=True, help="the PMS appointment key")
    why.add_argument("--format", choices=["table", "json"], default="table")
    send = command("send", "Group send: a manual message kind (e.g. office_closed) to the appointments of one day.")
    send.add_argument("--kind", required=True, help="a manual message kind (trigger = \"manual\"), e.g. office_closed")
    send.add_argument("--date", required=True, type=_day, help="the appointments' day, YYYY-MM-DD (clinic time)")
    send.add_argument("--location", action="append", default=[], help="only this location (PMS key); repeat for several")
    send.add_argument("--provider", default="", help="only this provider's appointments (PMS key)")
    send.add_argument("--type", default="", help="only this appointment type")
    send.add_argument("--dry-run", action="store_true", help="show the count and three rendered examples; queue nothing")
    send.add_argument("--yes", action="store_true", help="queue without asking (needed when not on a terminal)")
    command("check", "Check the config, database, connector, message kinds and templates.")
    user = command("user", "Staff accounts of the console: add, list, disable.")
    user.allow_abbrev = False  # `--password X` must be an error, not an abbreviation of --password-file
    user.add_argument("action", choices=["add", "list", "disable"])
    user.add_argument("name", nargs="?", help="the login name (add, disable)")
    user.add_argument("--role", choices=["admin", "front_desk", "provider"], default="front_desk",
                      help="admin: users and settings; front_desk: everything else; provider: own patients only")
    user.add_argument("--provider", help="provider accounts: the PMS provider key")
    user.add_argument("--locations", default="", help="location keys this user may see, comma-separated (default all)")
    user.add_argument("--email", default="", help="where this user's alerts go")
    user.add_argument("--password-file", type=Path,
                      help="read the password from this file's first line (default: ask twice on the terminal)")
    config = command("config", "Configuration helpers.")
    config.add_argument("action", choices=["example"], help="example: print a config with every key described")
    return top


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD, such as 2026-03-03") from None


def _when(text: str) -> datetime:
    """An ISO date or time; one without a zone is the clinic's time, attached once the config is read."""
    return datetime.fromisoformat(text)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from vitalsync.app import commands  # heavy imports only once the arguments are good

    try:
        return commands.dispatch(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SyncHeld as exc:
        print(f"held: {exc}", file=sys.stderr)
        return 3
    except (PersonMustAct, RetryLater) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `vitalsync log | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
