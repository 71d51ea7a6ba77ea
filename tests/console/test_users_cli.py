"""``vitalsync user add | list | disable``: passwords come from a file or a prompt, never an argument."""

from __future__ import annotations

import pytest

from vitalsync.cli import main, parser
from vitalsync.console.accounts import authenticate, list_users
from vitalsync.console.tables import StaffUser
from vitalsync.core.clock import SystemClock


@pytest.fixture(autouse=True)
def logging_restored():
    """`main` points the logs at this test's captured stderr; later tests must not write to it once closed."""
    import structlog
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def home(write_config, tmp_path):
    password = tmp_path / "password"
    password.write_text("a long enough password\n", encoding="utf-8")
    return write_config(f'[database]\nurl = "sqlite:///{tmp_path / "vitalsync.db"}"\n'), password


def test_add_list_and_disable_a_user(home, capsys):
    config, password = home
    assert main(["user", "add", "maria", "--config", str(config), "--role", "provider", "--provider", "north",
                 "--locations", "main, up", "--password-file", str(password)]) == 0
    assert main(["user", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "maria" in listed and "provider" in listed and "main up" in listed
    assert "a long enough password" not in listed
    assert main(["user", "disable", "maria", "--config", str(config)]) == 0
    from vitalsync.app.runtime import open_database
    from vitalsync.core.config import load_config
    engine = open_database(load_config(config))
    [user] = list_users(engine)
    assert isinstance(user, StaffUser) and user.active is False and user.password_hash.startswith("$argon2id$")


def test_a_password_is_never_an_argument():
    with pytest.raises(SystemExit):
        parser().parse_args(["user", "add", "maria", "--password", "secret"])


def test_without_a_terminal_or_a_file_there_is_no_password(home, capsys, monkeypatch):
    config, _ = home
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["user", "add", "maria", "--config", str(config)]) == 1
    assert "--password-file" in capsys.readouterr().err


def test_a_short_password_or_a_provider_without_key_is_refused(home, tmp_path, capsys):
    config, password = home
    short = tmp_path / "short"
    short.write_text("tiny\n", encoding="utf-8")
    assert main(["user", "add", "maria", "--config", str(config), "--password-file", str(short)]) == 1
    assert main(["user", "add", "maria", "--config", str(config), "--role", "provider", "--password-file", str(password)]) == 1
    err = capsys.readouterr().err
    assert "too short" in err and "--provider" in err


def test_the_added_user_can_log_in(home):
    config, password = home
    main(["user", "add", "maria", "--config", str(config), "--password-file", str(password)])
    from vitalsync.app.runtime import open_database
    from vitalsync.core.config import load_config
    loaded = load_config(config)
    login = authenticate(open_database(loaded), "maria", "a long enough password", SystemClock().now(), loaded.console)
    assert login.user.role == "front_desk" and login.token


def test_adding_and_disabling_from_the_command_line_is_audited(home):
    import getpass

    from sqlmodel import select

    from vitalsync.app.runtime import open_database
    from vitalsync.console.tables import AuditEntry
    from vitalsync.core.config import load_config
    from vitalsync.core.db import session
    config, password = home
    main(["user", "add", "maria", "--config", str(config), "--password-file", str(password)])
    main(["user", "disable", "maria", "--config", str(config)])
    with session(open_database(load_config(config))) as db:
        entries = db.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.target, e.address) for e in entries] == [
        ("add_user", "user:1", f"cli:{getpass.getuser()}"), ("disable_user", "user:1", f"cli:{getpass.getuser()}")]


def test_an_empty_name_is_refused(home, capsys):
    config, password = home
    assert main(["user", "add", "  ", "--config", str(config), "--password-file", str(password)]) == 1
    assert "needs a name" in capsys.readouterr().err


def test_ctrl_d_at_the_password_prompt_is_a_clean_exit(home, capsys, monkeypatch):
    config, _ = home
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    def end_of_input(prompt=""):
        raise EOFError
    monkeypatch.setattr("getpass.getpass", end_of_input)
    assert main(["user", "add", "maria", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no password given" in err and "Traceback" not in err
