"""Secrets come from files or the environment, never from the config file itself.

Order: the ``*_file`` key of the config (an error when set but unreadable), then the environment
variable ``VITALSYNC_<NAME>``, then the systemd credential ``$CREDENTIALS_DIRECTORY/<name>``
(``LoadCredential=<name>:...`` in the unit).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vitalsync.core.errors import ConfigError


def read_secret(name: str, file: Path | None, *, key: str, config_path: Path, required: bool) -> str | None:
    """The secret called ``name`` (``database_password``), or None when optional and absent.

    ``key`` is the config key of the file option (``database.password_file``), named in errors.
    """
    if file is not None:
        path = file if file.is_absolute() else config_path.parent / file
        try:
            with path.open(encoding="utf-8") as handle:
                _private(os.fstat(handle.fileno()).st_mode, path, key, config_path)
                return handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"{config_path}: {key}: cannot read the secret file {path}: {exc.strerror}") from None
    env = f"VITALSYNC_{name.upper()}"
    if os.environ.get(env):
        return os.environ[env]
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / name).is_file():
        return (Path(credentials) / name).read_text(encoding="utf-8").strip()
    if required:
        raise ConfigError(
            f"{config_path}: {key}: the secret '{name}' is missing; set {key}, the environment "
            f"variable {env}, or the systemd credential '{name}' (LoadCredential={name}:/path)")
    return None


def _private(mode: int, path: Path, key: str, config_path: Path) -> None:
    """Refuse a secret others can read, as ssh does with a private key: it is already out."""
    if mode & 0o077:
        raise ConfigError(f"{config_path}: {key}: the secret file {path} can be read by other users "
                          f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}")
