"""The config file: every mistake is one clear line naming the file and the key (exit 2, no traceback);
secrets come from a file, the environment or a systemd credential; the committed example is current."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from vitalsync.core import connector_config
from vitalsync.core.config import Config, load_config
from vitalsync.core.errors import ConfigError
from vitalsync.core.example import generate
from vitalsync.core.secrets import read_secret

ROOT = Path(__file__).resolve().parent.parent
STOCK_REMINDER = ROOT / "message_kinds" / "appointment_reminder.toml"
SECRET_ENV = ("VITALSYNC_DATABASE_PASSWORD", "CREDENTIALS_DIRECTORY")


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """``vitalsync check --config PATH`` in a fresh process, run from the config's folder."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV + ("VITALSYNC_CONFIG",)}
    return subprocess.run([sys.executable, "-m", "vitalsync", "check", "--config", str(path)],
                          capture_output=True, text=True, encoding="utf-8", cwd=path.parent, env=env, timeout=120)


def assert_config_error(proc: subprocess.CompletedProcess[str], path: Path, *needles: str) -> None:
    """Exit 2, no traceback, and stderr names the file at fault (``path``) and each of ``needles``."""
    output = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 2, output
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, output
    assert path.name in proc.stderr, output
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} missing:\n{output}"


# --- malformed configs, through the CLI --------------------------------------------------------


def test_unknown_key_is_named_with_the_allowed_keys(write_config):
    path = write_config('[database]\nurll = "x"\n')
    proc = check(path)
    assert_config_error(proc, path, "database.urll", "unknown key", "url", "password_file")
    assert "allowed here: url, password_file" in proc.stderr


def test_wrong_type_names_the_key(write_config):
    path = write_config('[daemon]\nplan_minutes = "often"\n')
    assert_config_error(check(path), path, "daemon.plan_minutes")


def test_unknown_time_zone_names_the_key(write_config):
    path = write_config('[schedule]\ntimezone = "Mars/Olympus"\n')
    assert_config_error(check(path), path, "schedule.timezone", "Mars/Olympus")


def test_missing_secret_file_names_the_key(write_config):
    path = write_config('[database]\npassword_file = "missing-secret"\n')
    assert_config_error(check(path), path, "database.password_file", "missing-secret")


def test_unknown_template_field_names_the_kind_file_and_line(write_config, tmp_path):
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    stock = STOCK_REMINDER.read_text(encoding="utf-8")
    original = "{{ patient.first_name }}, your appointment"
    assert original in stock, "the stock reminder changed; pick another line to break"
    broken = stock.replace(original, "{{ patient.last_name }}, your appointment", 1)
    (kinds / "appointment_reminder.toml").write_text(broken, encoding="utf-8")
    line = broken[:broken.index("patient.last_name")].count("\n") + 1
    proc = check(write_config('[message_kinds]\ndirectory = "kinds"\n'))
    assert_config_error(proc, kinds / "appointment_reminder.toml", f"appointment_reminder.toml:{line}:", "patient.last_name", "unknown field")


def test_invalid_toml_names_the_file_and_line(write_config):
    path = write_config('[database]\nurl = "sqlite:///x.db"\nbroken = \n')
    proc = check(path)
    assert_config_error(proc, path, "not valid TOML", "line 3")


def test_missing_config_file_suggests_the_example(tmp_path):
    path = tmp_path / "absent.toml"
    proc = check(path)
    assert_config_error(proc, path, "vitalsync config example")


# --- load_config directly -------------------------------------------------------------------


def test_load_config_error_lists_every_problem(write_config):
    path = write_config('[database]\nurll = "x"\n[daemon]\nplan_minutes = "often"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert all(str(path) in problem for problem in problems)
    assert any("database.urll" in p for p in problems) and any("daemon.plan_minutes" in p for p in problems)


def test_load_config_keeps_the_path_for_relative_files(write_config, tmp_path):
    config = load_config(write_config('[database]\npassword_file = "secrets/db"\n'))
    assert config.path == (tmp_path / "config.toml").resolve()
    assert config.relative(config.database.password_file) == tmp_path.resolve() / "secrets" / "db"


# --- secrets -----------------------------------------------------------------------------------


def _password(config) -> str | None:
    return read_secret("database_password", config.database.password_file, key="database.password_file",
                       config_path=config.path, required=False)


@pytest.fixture
def clean_secret_env(monkeypatch):
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_secret_from_a_file_relative_to_the_config(write_config, tmp_path, clean_secret_env):
    (tmp_path / "db-password").write_text("s3cret-from-file\n", encoding="utf-8")
    (tmp_path / "db-password").chmod(0o600)
    config = load_config(write_config('[database]\npassword_file = "db-password"\n'))
    clean_secret_env.setenv("VITALSYNC_DATABASE_PASSWORD", "from-env")  # the file wins
    assert _password(config) == "s3cret-from-file"


def test_secret_from_the_environment(write_config, tmp_path, clean_secret_env):
    config = load_config(write_config("[database]\n"))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database_password").write_text("from-credential", encoding="utf-8")
    clean_secret_env.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    clean_secret_env.setenv("VITALSYNC_DATABASE_PASSWORD", "s3cret-from-env")  # the environment wins
    assert _password(config) == "s3cret-from-env"


def test_secret_from_the_systemd_credential(write_config, tmp_path, clean_secret_env):
    config = load_config(write_config("[database]\n"))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database_password").write_text("s3cret-from-credential\n", encoding="utf-8")
    clean_secret_env.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert _password(config) == "s3cret-from-credential"


def test_absent_secret_is_none_when_optional_and_an_error_naming_the_key_when_required(write_config, clean_secret_env):
    config = load_config(write_config("[database]\n"))
    assert _password(config) is None
    with pytest.raises(ConfigError) as caught:
        read_secret("database_password", None, key="database.password_file", config_path=config.path, required=True)
    message = str(caught.value)
    assert "database.password_file" in message and "VITALSYNC_DATABASE_PASSWORD" in message
    assert str(config.path) in message


def test_unreadable_secret_file_names_the_key(write_config, clean_secret_env):
    config = load_config(write_config('[database]\npassword_file = "missing-secret"\n'))
    clean_secret_env.setenv("VITALSYNC_DATABASE_PASSWORD", "from-env")  # set but never a silent fallback
    with pytest.raises(ConfigError, match=r"database\.password_file.*missing-secret"):
        _password(config)


# --- the example ------------------------------------------------------------------------------


def test_committed_example_is_current():
    committed = ROOT / "config.example.toml"
    message = "config.example.toml is stale: run `vitalsync config example > config.example.toml`"
    assert committed.is_file(), message
    assert committed.read_text(encoding="utf-8") == generate(), message


def test_generated_example_parses_and_validates(write_config):
    config = load_config(write_config(generate(), name="example.toml"))
    assert config.model_dump() == Config().model_dump()


def test_config_example_command_prints_the_example():
    proc = subprocess.run([sys.executable, "-m", "vitalsync", "config", "example"],
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == generate()


def _models(annotation) -> list[type[BaseModel]]:
    """The config models inside an annotation (``LocationConfig`` in ``dict[str, LocationConfig]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models(arg)]


def test_every_field_of_every_section_has_a_description():
    missing, seen = [], set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        if not (model.__doc__ or "").strip():
            missing.append(f"{prefix or 'Config'} (class docstring)")
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            nested = _models(field.annotation)
            if not nested and not (field.description or "").strip():
                missing.append(key)
            for sub in nested:
                walk(sub, f"{key}.")

    walk(Config, "")
    for name in connector_config.installed():  # [connector] is each connector's own Options
        walk(connector_config.options_class(name), f"connector({name}).")
    assert len(seen) > 5 + len(connector_config.installed()), seen
    assert not missing, f"fields without a description: {', '.join(missing)}"
