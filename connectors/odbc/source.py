"""The ODBC side: connecting with the password from a secret, running a query, and what its errors mean.

pyodbc reports an SQLSTATE with every error. Connection trouble (08xxx, time-outs) is retried;
a refused login (28000), a missing driver or DSN (IMxxx), and a query naming a missing table or
column or holding bad SQL (42xxx) need a person. Drivers disagree on the rest (MariaDB's driver
says HY000 for "can't connect"), so an unclear failure while connecting is taken as transient and
one while querying as the query's fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vitalsync.core.errors import PersonMustAct, RetryLater, VitalsyncError

try:
    import pyodbc
except ImportError as exc:  # the extra is not installed, or unixODBC's libodbc is missing
    pyodbc, MISSING = None, str(exc)

#: A connection string already holding a password (the password belongs in a secret).
PASSWORD_KEY = re.compile(r"(?:^|;)\s*(?:PWD|PASSWORD)\s*=", re.IGNORECASE)
FETCH = 1000
TRANSIENT = ("08", "HYT", "40001", "40003")
#: Driver-message classes that quote the query or the login, never row values.
QUOTABLE = ("08", "28", "42", "IM", "HY")


def with_password(connection_string: str, password: str | None) -> str:
    """The connection string with ``PWD`` appended, braced so ';', '=' or '}' in it stay inside."""
    text = connection_string.strip()
    if password is None:
        return text
    if text and not text.endswith(";"):
        text += ";"
    return text + "PWD={" + password.replace("}", "}}") + "};"


def connect(connection_string: str, *, login_timeout: int):
    if pyodbc is None:
        raise PersonMustAct(f"the odbc connector needs pyodbc and unixODBC: pip install 'vitalsync[odbc]' "
                            f"and apt-get install unixodbc ({MISSING})")
    try:
        return pyodbc.connect(connection_string, autocommit=True, timeout=login_timeout)
    except pyodbc.Error as exc:
        raise _connect_error(exc) from None


def execute(connection, entity: str, sql: str) -> tuple[list[str], object]:
    """The column names of ``sql`` and the open cursor to :func:`fetch` its rows from."""
    cursor = None
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        description = cursor.description
    except pyodbc.Error as exc:
        if cursor is not None:
            close(cursor)
        raise _query_error(exc, entity) from None
    if description is None:
        close(cursor)
        raise PersonMustAct(f"the {entity} query returns no result set (is it a SELECT?); "
                            f"fix [connector.queries] {entity}")
    return [column[0] for column in description], cursor


def describe(connection) -> str:
    """'MariaDB 10.11.000019 (libmaodbc.so 03.01.0015)', as far as the driver tells."""
    def info(code):
        try:
            return str(connection.getinfo(code) or "").strip()
        except pyodbc.Error:
            return ""
    dbms = " ".join(filter(None, (info(pyodbc.SQL_DBMS_NAME), info(pyodbc.SQL_DBMS_VER)))) or "a database"
    driver = " ".join(filter(None, (info(pyodbc.SQL_DRIVER_NAME), info(pyodbc.SQL_DRIVER_VER))))
    return f"{dbms} ({driver})" if driver else dbms


def fetch(cursor, entity: str) -> Iterator[tuple]:
    """The cursor's rows, a thousand at a time; the cursor is closed at the end."""
    try:
        while chunk := cursor.fetchmany(FETCH):
            yield from chunk
    except pyodbc.Error as exc:
        raise _query_error(exc, entity) from None
    except (ValueError, OverflowError):  # a value pyodbc cannot turn into Python, such as year 0
        raise PersonMustAct(f"the {entity} query returned a value Python cannot read; cast or filter that "
                            f"column in [connector.queries] {entity}") from None
    finally:
        close(cursor)


def close(handle) -> None:
    """Close a cursor or connection; one that is already broken is as good as closed."""
    try:
        handle.close()
    except pyodbc.Error:
        pass


def _state(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else ""


def _said(exc: Exception) -> str:
    """The driver's words without its bracketed prefixes and call name, when they quote no row values."""
    state = _state(exc)
    if not state.startswith(QUOTABLE) or len(exc.args) < 2:
        return f"SQLSTATE {state or 'unknown'}"
    text = re.sub(r"\[[^\]]*\]\s*", "", str(exc.args[1]))
    text = re.sub(r"\s*\(SQL\w+\)\s*$", "", text).strip()
    return f"SQLSTATE {state}: {text[:300]}"


def _connect_error(exc: Exception) -> VitalsyncError:
    state, said = _state(exc), _said(exc)
    if state == "28000":
        return PersonMustAct(f"the ODBC login was refused ({said}); check UID in [connector] connection_string "
                             "and the password secret 'odbc_password'")
    if state.startswith("IM") or state in ("01000", "42000"):
        # IM002: no such DSN or driver; 01000: unixODBC cannot load the driver; 42000: no such database
        return PersonMustAct(f"cannot open the ODBC data source ({said}); check [connector] connection_string "
                             "and the drivers `odbcinst -q -d` lists")
    return RetryLater(f"the ODBC data source is not reachable ({said})")


def _query_error(exc: Exception, entity: str) -> VitalsyncError:
    state, said = _state(exc), _said(exc)
    if state.startswith(TRANSIENT) or state == "HY000":
        return RetryLater(f"the {entity} query was interrupted ({said})")
    return PersonMustAct(f"the {entity} query failed ({said}); fix [connector.queries] {entity} "
                         "or the database permissions")
