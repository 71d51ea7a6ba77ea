"""``vitalsync user add | list | disable`` and the demo's console login.

Adding and disabling are in the audit log like the console's, from ``cli:<system user>``."""

from __future__ import annotations

import getpass
import secrets
import sys
import threading

from vitalsync.app.output import emit
from vitalsync.console import accounts
from vitalsync.core.clock import SystemClock
from vitalsync.core.errors import PersonMustAct


def user_command(config, args) -> int:
    from vitalsync.app.runtime import open_database
    engine = open_database(config)
    now = SystemClock().now()
    if args.action == "list":
        emit([{"name": u.name, "role": u.role, "provider": u.provider_key, "locations": u.locations or "all",
               "email": u.email, "active": u.active, "last_login": u.last_login_at and u.last_login_at.isoformat(timespec="minutes")}
              for u in accounts.list_users(engine)], "table", ["name", "role", "provider", "locations", "email", "active", "last_login"])
        return 0
    if not args.name:
        raise PersonMustAct(f"vitalsync user {args.action} needs a NAME")
    if args.action == "disable":
        user = accounts.disable_user(engine, args.name)
        accounts.record(engine, now, "disable_user", target=f"user:{user.id}", address=_cli_address())
        print(f"disabled {args.name}; their sessions are ended")
        return 0
    if not args.name.strip():
        raise PersonMustAct("a user needs a name (the name they log in with)")
    user = accounts.add_user(engine, args.name, args.role, _password(args), now, provider_key=args.provider,
                             locations=[k.strip() for k in args.locations.split(",") if k.strip()], email=args.email)
    accounts.record(engine, now, "add_user", target=f"user:{user.id}", detail=user.role, address=_cli_address())
    print(f"added {user.name} ({user.role})")
    return 0


def _cli_address() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


def _password(args) -> str:
    """From --password-file, else asked twice on the terminal; never an argument (it would be in `ps`)."""
    if args.password_file:
        try:
            return args.password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError):
            raise PersonMustAct(f"cannot read a password from {args.password_file}") from None
    if not sys.stdin.isatty():
        raise PersonMustAct("no terminal to ask the password on; use --password-file FILE")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError:  # Ctrl-D at the prompt
        raise PersonMustAct("no password given; nothing was changed") from None
    if first != again:
        raise PersonMustAct("the two passwords differ")
    return first


def serve_demo(result, listen: str) -> int:
    """Serve the console over a demo home until Ctrl-C, with an 'admin' login whose password is in the home."""
    from vitalsync.app.console_server import start_console
    from vitalsync.core.config import load_config

    config = load_config(result.config_path)
    engine = result.runtime.engine
    password_file = result.home / "console-password"
    if not any(u.name == "admin" for u in accounts.list_users(engine)):
        password = secrets.token_urlsafe(12)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n", encoding="utf-8")
        accounts.add_user(engine, "admin", "admin", password, SystemClock().now())
    served = start_console(config, engine, SystemClock(), listen=listen, force=True)
    print(f"\nConsole: http://{listen}/  log in as 'admin' with the password in {password_file}\n"
          "(Ctrl-C stops it)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()
    return 0
