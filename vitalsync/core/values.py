"""Checks of single config values that would otherwise pass `check` and break at run time.

Each raises ValueError with a sentence for the IT staff; the config names the file and the key.
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from email_validator import EmailNotValidError, validate_email

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def region(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {value!r} (use a two-letter ISO 3166 code such as 'US', 'CA', 'GB')")
    return value.upper()


def phone(value: str, default_region: str = "US") -> str:
    """A number a person can dial: valid for its country, from ``default_region`` without a ``+``."""
    if not value:
        return value
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number for its country")
    return value


def e164(value: str) -> str:
    """A sending number: E.164 (``+`` and the country code), as Twilio expects it."""
    if not value:
        return value
    if not value.startswith("+"):
        raise ValueError(f"{value!r} is not in E.164 form (e.g. '+12125550100')")
    return phone(value, "ZZ")


def sid(prefix: str):
    def check(value: str) -> str:
        digits = value[2:]
        if value and not (value.startswith(prefix) and len(digits) == 32 and all(c in string.hexdigits for c in digits)):
            raise ValueError(f"{value!r} is not a Twilio SID ({prefix} and 32 hexadecimal digits)")
        return value
    return check


def email(value: str) -> str:
    if not value:
        return value
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address: {exc}") from None
    return value


def domain(value: str) -> str:
    if value and not (len(value.split(".")) >= 2 and all(HOST_LABEL.fullmatch(label) for label in value.split("."))):
        raise ValueError(f"{value!r} is not a domain name (e.g. 'reply.clinic.example')")
    return value.lower()


def listen(value: str) -> str:
    """``host:port``; an IPv6 host in brackets (``[::1]:8088``)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"expected host:port (e.g. '127.0.0.1:8088'), got {value!r}")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(HOST_LABEL.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"{host!r} in {value!r} is neither an IP address nor a host name") from None
    return value


def public_url(value: str) -> str:
    """An address others open: https, or http on this machine only."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{value!r} is not a web address (https://host/...)")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"{value!r} must use https (plain http only for localhost)")
    return value


def api_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) address")
    return value


def database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"{value!r} is not a database URL (e.g. 'sqlite:///vitalsync.db' or "
                         "'postgresql+psycopg://vitalsync@db-host/vitalsync')") from None
    if url.password:
        raise ValueError("no password in the URL: use password_file, $VITALSYNC_DATABASE_PASSWORD or the "
                         "systemd credential 'database_password'")
    return value


def placeholders(allowed: set[str]):
    """A str.format text that uses only ``allowed`` names (an unknown one fails every time it is used)."""
    def check(value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid text with placeholders: {exc} (write a literal brace as {{{{ or }}}})") from None
        unknown = sorted(names - allowed)
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} (allowed: "
                             + ", ".join("{" + name + "}" for name in sorted(allowed)) + ")")
        return value
    return check
