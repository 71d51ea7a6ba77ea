"""Fixtures the connector tests share: the MariaDB server holding Open Dental-shaped databases."""

import os

import pytest

from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync_connectors.opendental.database import connect, parse_url

MARIADB = os.environ.get("VITALSYNC_TEST_MARIADB", "mysql://root@127.0.0.1:3306")


@pytest.fixture(scope="module")
def server() -> str:
    """The MariaDB URL without a database; fails in CI and skips elsewhere when it is not there."""
    try:
        connect(parse_url(f"{MARIADB}/mysql"), database=None, read_only=False).close()
    except (RetryLater, PersonMustAct) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"MariaDB at {MARIADB} is required in CI: {exc}")
        pytest.skip(f"no MariaDB at {MARIADB}: {exc}")
    return MARIADB
