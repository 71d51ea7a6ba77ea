"""Staff accounts: argon2 password hashes, lock-out after wrong passwords, server-side sessions.

    user = add_user(engine, "maria", "front_desk", password, now)
    login = authenticate(engine, "maria", password, now, settings)   # a Login, or raises LoginRefused
    record(engine, now, "add_user", target="user:4", address="cli:root")   # one line in the audit log

Wrong passwords are counted by one UPDATE that increments and returns the count, *before* the
password is checked: of any number of attempts at once, only ``lockout_failures`` reach argon2 and
the rest are refused as locked (a read, a check and a write of the count let 20 parallel guesses
through, each writing a stale count + 1).
    user, sess = session_user(engine, login.token, now, settings)   # per request; None when expired
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, or_, update
from sqlmodel import select

from vitalsync.console.tables import ROLES, AuditEntry, StaffSession, StaffUser
from vitalsync.core.config import ConsoleConfig
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct

HASHER = PasswordHasher()
MIN_PASSWORD = 10
#: verified against when the name is unknown, so an unknown name takes as long as a wrong password
_DUMMY = HASHER.hash("not a password of anyone's")


class LoginRefused(Exception):
    """Wrong name or password (deliberately not saying which), or a disabled account."""


class LockedOut(LoginRefused):
    """Too many wrong passwords: the account is locked for a while."""


@dataclass
class Login:
    token: str  #: for the cookie; only its hash is stored
    user: StaffUser
    csrf: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(engine: Engine, name: str, role: str, password: str, now: datetime, *, provider_key: str | None = None,
             locations: list[str] | None = None, email: str = "") -> StaffUser:
    """Create an account; PersonMustAct when the name is taken or the role, provider or password is unfit."""
    name = name.strip()
    if not name:
        raise PersonMustAct("a user needs a name (the name they log in with)")
    if role not in ROLES:
        raise PersonMustAct(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "provider" and not provider_key:
        raise PersonMustAct("a provider account needs --provider KEY (the PMS provider key)")
    if len(password) < MIN_PASSWORD:
        raise PersonMustAct(f"the password is too short: at least {MIN_PASSWORD} characters")
    with session(engine) as db:
        if db.exec(select(StaffUser).where(StaffUser.name == name)).first():
            raise PersonMustAct(f"a user called {name!r} exists already")
        user = StaffUser(name=name, role=role, password_hash=HASHER.hash(password), provider_key=provider_key,
                         locations=" ".join(locations or []), email=email, created_at=now)
        db.add(user)
        db.commit()
        db.refresh(user)
        return user


def list_users(engine: Engine) -> list[StaffUser]:
    with session(engine) as db:
        return list(db.exec(select(StaffUser).order_by(StaffUser.name)))


def disable_user(engine: Engine, name: str) -> StaffUser:
    """Disable an account and end its sessions at once."""
    with session(engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == name)).first()
        if user is None:
            raise PersonMustAct(f"no user called {name!r} (vitalsync user list)")
        user.active = False
        db.add(user)
        db.exec(delete(StaffSession).where(StaffSession.user_id == user.id))
        db.commit()
        return user


def record(engine: Engine, now: datetime, action: str, *, user_id: int | None = None, target: str = "",
           detail: str = "", address: str = "") -> None:
    """One line in the audit log (ids and keys only)."""
    with session(engine) as db:
        db.add(AuditEntry(at=now, user_id=user_id, action=action, target=target, detail=detail, address=address))
        db.commit()


def authenticate(engine: Engine, name: str, password: str, now: datetime, settings: ConsoleConfig, *,
                 address: str = "") -> Login:
    """Check a login; on success open a session. Every attempt is in the audit log (by user id, with the address)."""
    with session(engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == name)).first()
    if user is None or not user.active:
        _verify(_DUMMY, password)
        record(engine, now, "login_refused", user_id=user.id if user else None,
               detail="disabled" if user else "unknown name", address=address)
        raise LoginRefused()
    attempt = _count_attempt(engine, user.id, now)
    if attempt is None or attempt > settings.lockout_failures:
        if attempt is not None:  # past the allowance while others were being checked: lock now
            _lock(engine, user.id, now, settings)
        record(engine, now, "login_refused", user_id=user.id, detail="locked", address=address)
        raise LockedOut()
    if not _verify(user.password_hash, password):
        locked = attempt >= settings.lockout_failures
        if locked:
            _lock(engine, user.id, now, settings)
        record(engine, now, "login_refused", user_id=user.id,
               detail="wrong password, locked" if locked else "wrong password", address=address)
        raise LockedOut() if locked else LoginRefused()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with session(engine) as db:
        user = db.get(StaffUser, user.id)
        if HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = HASHER.hash(password)
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
        db.add(user)
        db.add(StaffSession(token_hash=hash_token(token), user_id=user.id, csrf=csrf, created_at=now,
                            expires_at=now + timedelta(minutes=settings.session_minutes)))
        db.add(AuditEntry(at=now, user_id=user.id, action="login", address=address))
        db.commit()
        return Login(token, user, csrf)


def _count_attempt(engine: Engine, user_id: int, now: datetime) -> int | None:
    """Count one attempt atomically (before its password is checked); its number, or None while locked."""
    with session(engine) as db:
        count = db.exec(update(StaffUser)
                        .where(StaffUser.id == user_id,
                               or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now))
                        .values(failed_logins=StaffUser.failed_logins + 1)
                        .returning(StaffUser.failed_logins)).scalar()
        db.commit()
        return count


def _lock(engine: Engine, user_id: int, now: datetime, settings: ConsoleConfig) -> None:
    with session(engine) as db:
        db.exec(update(StaffUser).where(StaffUser.id == user_id)
                .values(failed_logins=0, locked_until=now + timedelta(minutes=settings.lockout_minutes)))
        db.commit()


def session_user(engine: Engine, token: str | None, now: datetime,
                 settings: ConsoleConfig) -> tuple[StaffUser, StaffSession] | None:
    """The user and session of a cookie token, sliding its expiry; None when unknown, expired or disabled."""
    if not token:
        return None
    with session(engine) as db:
        found = db.exec(select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.user_id)
                        .where(StaffSession.token_hash == hash_token(token))).first()
        if found is None:
            return None
        sess, user = found
        if sess.expires_at <= now or not user.active:
            db.delete(sess)
            db.commit()
            return None
        renewed = now + timedelta(minutes=settings.session_minutes)
        if renewed - sess.expires_at > timedelta(minutes=1):  # one write a minute at most, not one per page
            sess.expires_at = renewed
            db.add(sess)
            db.commit()
        return user, sess


def end_session(engine: Engine, token: str | None) -> None:
    if token:
        with session(engine) as db:
            db.exec(delete(StaffSession).where(StaffSession.token_hash == hash_token(token)))
            db.commit()


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
