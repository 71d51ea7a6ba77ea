"""``vitalsync check``: an OK line per part, or what is wrong and the command to run next."""

from __future__ import annotations

import errno
import socket
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text

from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError, VitalsyncError
from vitalsync.core.times import shown


def check(config: Config) -> int:
    from vitalsync.app.runtime import build_connector, open_database
    from vitalsync.rules.kinds import load_kinds

    failures = config_errors = 0

    def part(name: str, action, fix: str) -> object:
        nonlocal failures, config_errors
        try:
            result = action()
        except (VitalsyncError, Exception) as exc:  # every failure becomes a line, not a traceback
            failures += 1
            print(f"FAIL  {name}: {exc}\n      next: {fix}")
            if isinstance(exc, ConfigError):  # the config file must be fixed: say so on stderr, exit 2
                config_errors += 1
                print(f"error: {exc}", file=sys.stderr)
            return None
        print(f"OK    {name}: {result[0] if isinstance(result, tuple) else result}")
        return result

    print(f"OK    config: {config.path}")
    engine = part("database", lambda: _database(open_database(config)), "check [database] url and the password secret, then `vitalsync check` again")
    part("connector", lambda: build_connector(config).check(), f"check [connector] in {config.path}; then `vitalsync sync --config {config.path}`")
    kinds = part("message kinds", lambda: _kinds(load_kinds(config.message_kinds.enabled, config.message_kinds.directory and config.relative(config.message_kinds.directory))),
                 "fix the kind file named above")
    part("secrets", lambda: _secrets(config), "fix the secret named above, then `vitalsync check` again")
    part("listeners", lambda: _listeners(config), "change the listen address named above, or stop what holds it")
    if kinds:
        part("templates", lambda: _templates(kinds[1], config), "fix the template named above")
    if engine:
        _last_sync(engine[1], ZoneInfo(config.schedule.timezone))
        _write_backs(engine[1], config)
        engine[1].dispose()
    return 2 if config_errors else 1 if failures else 0


def _database(engine):
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return f"{engine.url.render_as_string(hide_password=True)} (schema up to date)", engine


def _secrets(config: Config) -> str:
    """Open every secret the config will need at run time, so a missing one fails here, not at 3 am."""
    from vitalsync.core.secrets import read_secret

    needed = [("database_password", config.database.password_file, "database.password_file", False)]
    if config.console.enabled:
        needed.append(("console_secret_key", config.console.secret_key_file, "console.secret_key_file", True))
    if config.sender.type == "providers":
        needed += [("twilio_auth_token", config.twilio.auth_token_file, "twilio.auth_token_file", True),
                   ("sendgrid_api_key", config.sendgrid.api_key_file, "sendgrid.api_key_file", True)]
        if config.sendgrid.reply_domain:
            needed.append(("sendgrid_inbound_secret", config.sendgrid.inbound_secret_file,
                           "sendgrid.inbound_secret_file", True))
    found = [key.rsplit(".", 1)[0] for name, file, key, required in needed
             if read_secret(name, file, key=key, config_path=config.path, required=required) is not None]
    return f"{len(found)} found ({', '.join(found)})" if found else "none needed"


def _listeners(config: Config) -> str:
    """Each address the service will listen on can be bound now (or is held, likely by the service)."""
    wanted = []
    if config.sender.type == "providers":
        wanted.append(("webhooks.listen", config.webhooks.listen))
    if config.console.enabled:
        wanted.append(("console.listen", config.console.listen))
    if config.connector.type == "hl7":
        wanted.append(("connector.listen", config.connector.listen))
    notes = []
    for key, address in wanted:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, int(port)))
                notes.append(f"{address} free")
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise ConfigError(f"{config.path}: {key}: cannot listen on {address}: {exc.strerror}") from None
                notes.append(f"{address} in use (by a running vitalsync?)")
    return "; ".join(notes) if notes else "none needed"


def _kinds(kinds):
    return f"{len(kinds)} enabled ({', '.join(kinds)})", kinds


def _templates(kinds, config):
    """Every template of every kind rendered for the synthetic sample patient (as the console's
    Message kinds page shows them): a template that fails here would fail at its first send."""
    from vitalsync.rules.sample import samples
    zone, now = ZoneInfo(config.schedule.timezone), datetime.now(timezone.utc)
    count = sum(len(samples(kind, config.clinic.name, config.clinic.phone, zone, now)) for kind in kinds.values())
    return f"every template renders ({count} samples, family messages included)"


def _last_sync(engine, zone: ZoneInfo) -> None:
    from vitalsync.console.queries import sync_runs
    runs = sync_runs(engine, 1)
    if not runs:
        print("INFO  last sync: none yet (run `vitalsync sync --config PATH`)")
        return
    run = runs[0]
    state = "OK  " if run["outcome"] == "ok" else "WARN"
    print(f"{state}  last sync: {run['mode']} {run['outcome']} at {shown(run['started_at'], zone)}: {run['rows_read']} rows read, "
          f"{run['changed']} changed, {run['removed']} removed, {run['rejected']} rejected, {run['seconds']} s"
          + (f"\n      {run['detail']}" if run["detail"] else ""))


def _write_backs(engine, config: Config) -> None:
    """Answers on their way to the PMS: pending (the PMS away) is a note, held or failed a warning."""
    from vitalsync.core.connector_config import writes_back
    from vitalsync.status.writeback import write_back_state
    state = write_back_state(engine, limit=3)
    counts = state["counts"]
    if not writes_back(config.connector) and not any(counts[s] for s in ("pending", "held", "failed")):
        return
    stuck = counts["held"] + counts["failed"]
    print(f"{'WARN' if stuck else 'OK  '}  write-back: {counts['done']} written, {counts['pending']} pending, "
          f"{counts['held']} held, {counts['failed']} failed"
          + (f"\n      waiting for the PMS: {state['last_retry_error']}" if state["last_retry_error"] else "")
          + "".join(f"\n      {w['status']}: appointment {w['appointment']} {w['answer']}: {w['error']}" for w in state["stuck"])
          + ("\n      next: fix the cause, then 'Try them again' on the console's Sync page" if stuck else ""))
