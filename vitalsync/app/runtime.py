"""Builds the running parts from a config: database, connector, message kinds, senders, clock."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.engine import make_url

from vitalsync.app.jobs import JobLeases
from vitalsync.app.schema import migrate
from vitalsync.core.clock import Clock, SystemClock
from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError
from vitalsync.core.db import make_engine, session
from vitalsync.core.secrets import read_secret
from vitalsync.app.senders import build_senders
from vitalsync.dispatch.fake import Delivery, FakeSender
from vitalsync.dispatch.reconcile import ReconcileReport, reconcile_once
from vitalsync.dispatch.run import Dispatcher
from vitalsync.dispatch.sender import Sender
from vitalsync.mirror.refresh import refresh_once
from vitalsync.queue.planning import plan_once
from vitalsync.rules.kinds import MessageKind, load_kinds
from vitalsync.status.inbox import process_pending
from vitalsync.status.record import record_delivery, record_reply
from vitalsync.status.writeback import WriteBackReport, write_back_once
from vitalsync.core.connector_config import writes_back
from vitalsync.sync.connector import Connector, WritesBack
from vitalsync.sync.guard import RemovalGuard
from vitalsync.sync.registry import connector_class

log = structlog.get_logger("vitalsync.status")


def database_url(config: Config) -> str:
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(config.state(url.database)))
    return url.render_as_string(hide_password=False)


def open_database(config: Config) -> Engine:
    """The engine, migrated; a database that cannot be opened is a ConfigError naming database.url."""
    password = read_secret("database_password", config.database.password_file, key="database.password_file",
                           config_path=config.path, required=False)
    url = database_url(config)
    key = f"{config.path}: database.url"
    folder = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    if folder and folder != ":memory:" and not Path(folder).parent.is_dir():
        raise ConfigError(f"{key}: the folder {Path(folder).parent} does not exist (create it, or change the url)")
    try:
        engine = make_engine(url, password)
        with engine.connect():
            pass
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{key}: the database driver '{exc.name}' is not installed "
                          "(PostgreSQL: pip install 'vitalsync[postgres]')") from None
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"{key}: not a database URL vitalsync can use: {exc}") from None
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise ConfigError(f"{key}: cannot open the database: {reason}") from None
    migrate(engine)
    return engine


def build_connector(config: Config) -> Connector:
    """The configured connector: ``from_config(options, config)`` of the class its type names."""
    return connector_class(config.connector.type).from_config(config.connector, config)


@dataclass
class Runtime:
    """One process's parts; each ``*_once`` is a step the daemon, the CLI, the demo and tests call."""

    config: Config
    engine: Engine
    connector: Connector
    kinds: dict[str, MessageKind]
    sender: FakeSender  #: the simulation; also the senders' stand-in when [sender] type = "fake"
    clock: Clock = field(default_factory=SystemClock)
    #: this process's name on the leases it takes: two processes must never share one
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    senders: dict[str, Sender] | None = None  #: channel -> sender; None means the fake for every channel

    def __post_init__(self) -> None:
        self.jobs = JobLeases(self.engine, self.owner, self.clock, timedelta(seconds=self.config.daemon.job_lease_seconds))

    @property
    def dispatcher(self) -> Dispatcher:
        senders = self.senders or {channel: self.sender for channel in self.sender.channels}
        return Dispatcher(self.engine, self.kinds, senders, self.config, self.clock, self.owner)

    def sync_once(self, *, full: bool = False, force: bool = False):
        """A full or incremental sync; None when another process (or job) is syncing now."""
        guard = RemovalGuard(1.0 if force else self.config.sync.max_removed_share, self.config.sync.min_upcoming_for_guard)
        return self.jobs.run("sync", lambda: refresh_once(self.engine, self.connector, self.clock, full=full, guard=guard))

    def plan_once(self):
        """A planning pass; None when another process is planning now."""
        return self.jobs.run("plan", lambda: plan_once(self.engine, self.kinds, self.config, self.clock))

    def dispatch_once(self):
        return self.dispatcher.dispatch_once()

    def reconcile_once(self) -> ReconcileReport | None:
        """Ask the providers about messages flagged needs_reconciliation; resend only what is provably not there.

        None when another process is reconciling now."""
        senders = self.senders or {channel: self.sender for channel in self.sender.channels}
        return self.jobs.run("reconcile", lambda: reconcile_once(self.engine, senders, self.kinds, self.config, self.clock))

    def write_back_once(self) -> WriteBackReport | None:
        """Write patients' answers to the PMS (``[connector] write_back``); None when it is off or
        another process is writing back now."""
        if not writes_back(self.config.connector) or not isinstance(self.connector, WritesBack):
            return None
        return self.jobs.run("write_back", lambda: write_back_once(self.engine, self.connector, self.clock.now()))

    def inbox_once(self) -> dict:
        """Process what the webhooks stored but could not process: delivery reports that came before
        their message's provider id was committed, events whose processing failed. Counts."""
        from vitalsync.status.webhooks import PROCESSORS
        return process_pending(self.engine, self, self.clock, PROCESSORS)

    def status_once(self) -> tuple[int, int]:
        """Take in the provider's pending events (the fake's simulated ones); (deliveries, replies)."""
        deliveries = replies = 0
        with session(self.engine) as db:
            for event in self.sender.poll(self.clock.now()):
                if isinstance(event, Delivery):
                    deliveries += record_delivery(db, event.reference, event.delivered, event.at,
                                                  source="provider", detail=event.detail, kinds=self.kinds)
                else:
                    reply = record_reply(db, self.config, event.channel, event.address, event.body, event.at)
                    if reply.answer:
                        self.sender.answer(event.channel, event.address, reply.answer)
                    replies += 1
                db.commit()
                if not isinstance(event, Delivery):
                    log.info("reply_recorded", source="fake", intent=str(reply.intent),
                             matched=reply.message_id is not None, needs_staff=reply.needs_staff)
        return deliveries, replies


def build(config: Config, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    fake = FakeSender(clock=clock, seed=config.sender.seed)
    return Runtime(
        config=config, engine=open_database(config), connector=build_connector(config),
        kinds=load_kinds(config.message_kinds.enabled, config.message_kinds.directory and config.relative(config.message_kinds.directory)),
        sender=fake, clock=clock, senders=build_senders(config, clock, fake))
