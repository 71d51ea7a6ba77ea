"""Values that used to pass `vitalsync check` and break at run time are refused at load, naming the
file and the key (exit 2, no traceback); `check` opens every secret and listen address; a database
that cannot be opened is a keyed error; secrets others can read are refused; the SQLite database is
private whatever the umask; `run --once` says when a step failed; the demo never overwrites a real
install."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_config import assert_config_error, check
from vitalsync.app.demo import make_home
from vitalsync.core.config import load_config
from vitalsync.core.errors import ConfigError, PersonMustAct
from vitalsync.core.secrets import read_secret

PROVIDERS = """
[sender]
type = "providers"
[twilio]
account_sid = "AC{zeros}"
auth_token_file = "token"
from_number = "+15005550006"
[sendgrid]
api_key_file = "key"
from_email = "clinic@example.org"
[webhooks]
public_url = "https://hooks.example.org"
listen = "127.0.0.1:{port}"
""".replace("{zeros}", "0" * 32)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("toml", "key", "needle"), [
    ('[replies]\nhelp_text = "Call {clinic} at {phon}"\n', "replies.help_text", "{phon}"),
    ('[replies]\nhelp_text = "Call us {"\n', "replies.help_text", "brace"),
    ('[replies]\nunknown_answer = "Thanks {name}"\n', "replies.unknown_answer", "{name}"),
    ('[twilio]\nfrom_number = "12345"\n', "twilio.from_number", "E.164"),
    ('[twilio]\nfrom_number = "+1555"\n', "twilio.from_number", "not a valid phone number"),
    ('[twilio]\naccount_sid = "not-a-sid"\n', "twilio.account_sid", "AC and 32"),
    ('[sendgrid]\nfrom_email = "not-an-email"\n', "sendgrid.from_email", "not an email address"),
    ('[clinic]\nphone = "call us maybe"\n', "clinic.phone", "not a phone number"),
    ('[schedule]\nwindow_start = 19:00:00\nwindow_end = 09:00:00\n', "schedule", "window_start 19:00"),
    ('[schedule]\nwindow_start = 10:00:00\n[locations.2]\nwindow_end = 08:00:00\n', "locations.2", "window_end 08:00"),
    ('[webhooks]\nlisten = "nonsense"\n', "webhooks.listen", "host:port"),
    ('[console]\nlisten = "127.0.0.1:99999"\n', "console.listen", "host:port"),
    ('[webhooks]\npublic_url = "javascript:alert(1)"\n', "webhooks.public_url", "not a web address"),
    ('[webhooks]\npublic_url = "http://hooks.example.org"\n', "webhooks.public_url", "must use https"),
    ('[console]\npublic_url = "ftp://x"\n', "console.public_url", "not a web address"),
    ('[connector]\ntype = "demo"\ndefault_region = "ZZ"\n', "connector.default_region", "unknown region"),
    ('[database]\nurl = "garbage"\n', "database.url", "not a database URL"),
    ('[database]\nurl = "postgresql+psycopg://vs:hunter2@db/vs"\n', "database.url", "no password in the URL"),
])
def test_a_value_that_would_break_at_run_time_is_refused_at_load(write_config, toml, key, needle):
    path = write_config(toml)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f"{path}: {key}" in str(error.value) and needle in str(error.value), str(error.value)
    assert_config_error(check(path), path, key, needle)


def test_good_values_of_the_same_keys_load(write_config):
    config = load_config(write_config(
        '[clinic]\nphone = "+44 20 7946 0958"\n[connector]\ntype = "demo"\ndefault_region = "gb"\n'
        '[webhooks]\nlisten = "[::1]:8088"\npublic_url = "http://localhost:8088"\n'
        '[console]\npublic_url = "https://console.clinic.example"\n'
        '[replies]\nhelp_text = "{clinic}: call {phone}; {{braces}} stay"\n'))
    assert config.connector.default_region == "GB"
    assert config.replies.help_text.format(clinic="A", phone="1") == "A: call 1; {braces} stay"


def test_check_opens_every_secret_a_providers_config_needs(write_config, tmp_path):
    path = write_config(PROVIDERS.replace("{port}", str(free_port())))
    (tmp_path / "key").write_text("SG.key")
    (tmp_path / "key").chmod(0o600)
    assert_config_error(check(path), path, "twilio.auth_token_file", "token")
    (tmp_path / "token").write_text("secret")
    (tmp_path / "token").chmod(0o600)
    proc = check(path)
    assert "OK    secrets: 2 found (twilio, sendgrid)" in proc.stdout, proc.stdout + proc.stderr


def test_check_tries_each_listen_address(write_config, tmp_path):
    for name in ("token", "key"):
        (tmp_path / name).write_text("s")
        (tmp_path / name).chmod(0o600)
    port = free_port()
    path = write_config(PROVIDERS.replace("{port}", str(port)))
    assert f"OK    listeners: 127.0.0.1:{port} free" in check(path).stdout
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        assert "in use" in check(path).stdout
    path = write_config(PROVIDERS.replace("127.0.0.1:{port}", "192.0.2.1:8088"))  # TEST-NET: not this machine
    assert_config_error(check(path), path, "webhooks.listen", "cannot listen on 192.0.2.1:8088")


@pytest.mark.parametrize(("url", "needle"), [
    ("sqlite:///no-such-folder/x.db", "does not exist"),
    ("postgresql+psycopg://nobody@127.0.0.1:1/x", "cannot open the database"),
    ("mysql+nodriver://x/y", "not a database URL vitalsync can use"),
])
def test_a_database_that_cannot_be_opened_is_a_keyed_error(write_config, url, needle):
    path = write_config(f'[database]\nurl = "{url}"\n')
    for command in ("check", "plan"):
        proc = subprocess.run([sys.executable, "-m", "vitalsync", command, "--config", str(path)],
                              capture_output=True, text=True, cwd=path.parent, timeout=120)
        assert_config_error(proc, path, "database.url", needle)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_can_read_is_refused_with_the_fix(write_config, tmp_path, mode):
    secret = tmp_path / "db-password"
    secret.write_text("s3cret")
    secret.chmod(mode)
    config = load_config(write_config('[database]\npassword_file = "db-password"\n'))
    with pytest.raises(ConfigError, match=rf"database\.password_file.*{oct(mode)[2:]}.*chmod 600 {secret}"):
        read_secret("database_password", config.database.password_file, key="database.password_file",
                    config_path=config.path, required=True)
    secret.chmod(0o600)
    assert read_secret("database_password", config.database.password_file, key="database.password_file",
                       config_path=config.path, required=True) == "s3cret"


def test_the_sqlite_database_is_private_whatever_the_umask(write_config, tmp_path):
    path = write_config('[database]\nurl = "sqlite:///vs.db"\n')
    script = ("import os, sys; os.umask(0); from vitalsync.core.config import load_config; "
              "from vitalsync.app.runtime import open_database; "
              "e = open_database(load_config(sys.argv[1])); e.dispose()")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    files = sorted(tmp_path.glob("vs.db*"))
    assert files, "no database made"
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, f"{file.name}: {oct(file.stat().st_mode)}"


def test_an_existing_database_others_could_read_is_closed_to_them(write_config, tmp_path):
    database = tmp_path / "vs.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    from vitalsync.app.runtime import open_database
    open_database(load_config(write_config('[database]\nurl = "sqlite:///vs.db"\n'))).dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_run_once_exits_non_zero_when_a_step_failed(write_config, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "appointments.csv").write_text("not,a,valid\nexport\n")
    path = write_config(f'[database]\nurl = "sqlite:///vs.db"\n[connector]\ntype = "csv"\nfolder = "{drop}"\n')
    proc = subprocess.run([sys.executable, "-m", "vitalsync", "run", "--once", "--config", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "a step failed" in proc.stderr


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path):
    install = tmp_path / "etc-vitalsync"
    install.mkdir()
    (install / "config.toml").write_text('[database]\nurl = "sqlite:///vitalsync.db"\n')
    (install / "vitalsync.db").write_bytes(b"replies and staff accounts")
    with pytest.raises(PersonMustAct, match="--force"):
        make_home(install, 7, __import__("datetime").date(2026, 3, 2))
    assert (install / "vitalsync.db").read_bytes() == b"replies and staff accounts"
    assert (install / "config.toml").read_text().startswith("[database]")
    proc = subprocess.run([sys.executable, "-m", "vitalsync", "demo", "--home", str(install), "--days", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "not a demo home" in proc.stderr and "Traceback" not in proc.stderr
    assert (install / "vitalsync.db").read_bytes() == b"replies and staff accounts"


def test_the_demo_reuses_its_own_home_an_empty_folder_or_a_forced_one(tmp_path):
    from datetime import date
    home = tmp_path / "demo-home"
    make_home(home, 7, date(2026, 3, 2))
    assert stat.S_IMODE((home / "console.key").stat().st_mode) == 0o600
    (home / "vitalsync.db").write_bytes(b"old demo data")
    make_home(home, 7, date(2026, 3, 2))  # its own home: replaced
    assert not (home / "vitalsync.db").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    make_home(empty, 7, date(2026, 3, 2))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    make_home(other, 7, date(2026, 3, 2), force=True)
    assert (other / "config.toml").is_file()
