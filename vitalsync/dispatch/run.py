"""``dispatch_once``: send what is due, each message exactly once or flagged for reconciliation.

For each claimed message, in order:

1. read the mirror fresh and drop the message if it went stale (cancelled, moved, answered, the recall
   closed or the order picked up); route it by the mirror as it is now (the current address, consent
   and opt-outs of its channel, else the kind's next channel; the patient's current language), each
   change a history row, or skip it when no channel is left;
2. if now is outside the send window for its recipient, move its send time to the next allowed moment;
3. render it, mark the attempt *in flight* and commit, then call the sender;
4. record the outcome: sent, failed, the next channel (unreachable), retry later (never left), or
   needs_reconciliation (may have left). A message found still in flight when claimed again was
   interrupted mid-send (a crash) and is flagged, never resent blindly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, Engine, bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from vitalsync.core.clock import Clock, SystemClock
from vitalsync.core.config import Config
from vitalsync.core.errors import AmbiguousSendError, PermanentSendError, TransientSendError, UnreachableError
from vitalsync.core.leases import SERVER_NOW
from vitalsync.core.times import shown
from vitalsync.core.vocab import DecisionKind, MessageStatus
from vitalsync.dispatch.cap import capped_until
from vitalsync.dispatch.cap import reason as cap_reason
from vitalsync.dispatch.claim import claim, lease_clock, release
from vitalsync.dispatch.compose import compose
from vitalsync.dispatch.recheck import Facts, gather, route, stale
from vitalsync.dispatch.sender import Outgoing, Sender
from vitalsync.queue.outbox import decide, store, transition
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.pacing import Limits
from vitalsync.rules.schedule import base_window

log = structlog.get_logger("vitalsync.dispatch")
MAX_ATTEMPTS = 5


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    dropped: int = 0  #: cancelled or skipped at the last look
    failed: int = 0
    retried: int = 0
    unsure: int = 0  #: needs_reconciliation


@dataclass
class Dispatcher:
    engine: Engine
    kinds: dict[str, MessageKind]
    senders: dict[str, Sender]
    config: Config
    clock: Clock
    owner: str = "worker"

    def dispatch_once(self) -> DispatchReport:
        """Claim a batch of due messages and settle each; ``claimed == batch size`` means more may wait."""
        report = DispatchReport()
        lease = timedelta(seconds=self.config.daemon.lease_seconds)
        ids = claim(self.engine, self.clock.now(), self.owner, self.config.daemon.batch_size, lease,
                    lease_now=self._lease_now())
        # one connection for the batch: a session per message would check one out (and ping it)
        # twice per message, once per commit (bench/dispatch measures the queue path)
        with self.engine.connect() as connection:
            for message_id in ids:
                report.claimed += 1
                self._settle(message_id, report, connection)
        if report.claimed:
            log.info("dispatch_done", **report.__dict__)
        return report

    def _lease_now(self):
        """None on the system clock: message leases then go by the database's clock, which every host
        shares, so a host whose clock runs fast cannot take a message another worker is sending
        (:mod:`vitalsync.dispatch.claim`). A virtual clock (tests, the demo) is the time itself."""
        return None if isinstance(self.clock, SystemClock) else self.clock.now()

    def _settle(self, message_id: int, report: DispatchReport, connection: Connection) -> None:
        now = self.clock.now()
        with Session(connection, expire_on_commit=False) as db:
            message = db.get(Message, message_id)
            if message is None or message.status != MessageStatus.NOT_SENT or message.lease_owner != self.owner:
                return
            if message.in_flight:
                self._finish(db, message, MessageStatus.NEEDS_RECONCILIATION, "interrupted during a send; reconcile with the provider", report)
                return
            kind = self.kinds.get(message.kind)
            facts = gather(db, message, kind)
            if verdict := stale(db, message, kind, facts, now):
                self._drop(db, message, *verdict, report)
                return
            if nowhere := self._route(db, message, kind, facts):
                self._drop(db, message, MessageStatus.SKIPPED, nowhere, report)
                return
            if self._capped(db, message, kind, facts, report) or self._defer(db, message, kind, facts, report):
                return
            self._send(db, message, kind, facts, report)

    def _defer(self, db, message: Message, kind: MessageKind, facts: Facts, report: DispatchReport) -> bool:
        now = self.clock.now()
        location = facts.members[0][1] if facts.members else facts.pickup_location
        window = base_window(self.config, location.key if location else None, location.timezone if location else None)
        tz = _zone(facts.patient.timezone) or window.tz
        if window.allows(now, tz):
            return False
        when = window.next_allowed(now, tz)
        if when is None or (message.deadline is not None and when >= message.deadline):
            self._drop(db, message, MessageStatus.SKIPPED, "no allowed send time left before the appointment", report)
            return True
        message.send_at = when
        release(message)
        decide(db, key=f"{message.key}|deferred|{when.isoformat()}", at=now, kind=message.kind,
               decision=DecisionKind.DEFERRED, reason=f"outside the send window for the recipient; moved to {shown(when, window.tz)}",
               appointment_key=message.appointment_key, patient_key=message.patient_key, message_id=message.id,
               channel=message.channel)
        db.add(message)
        db.commit()
        report.deferred += 1
        return True

    def _capped(self, db, message: Message, kind: MessageKind, facts: Facts, report: DispatchReport) -> bool:
        """The frequency cap's last look (dispatch/cap.py): over it, the message moves to the next day it fits."""
        limits = Limits.from_config(self.config.schedule)
        day = capped_until(db, message, limits, self.clock.now())
        if day is None:
            return False
        if message.deadline is not None and day >= message.deadline:
            self._drop(db, message, MessageStatus.SKIPPED, f"frequency cap ({limits.describe()}) reached at the "
                       "send; no day left before the appointment", report)
            return True
        message.send_at = day  # the window check then moves it to that day's first allowed moment
        release(message)
        decide(db, key=f"{message.key}|deferred|cap|{day.isoformat()}", at=self.clock.now(), kind=message.kind,
               decision=DecisionKind.DEFERRED, reason=cap_reason(limits, day), appointment_key=message.appointment_key,
               patient_key=message.patient_key, subject_key=message.subject_key, message_id=message.id,
               channel=message.channel)
        db.add(message)
        db.commit()
        report.deferred += 1
        return True

    def _send(self, db, message: Message, kind: MessageKind, facts: Facts, report: DispatchReport) -> None:
        while True:
            outgoing = self._outgoing(message, kind, facts)
            if not self._mark_in_flight(db, message):
                return  # the lease ran out and another worker holds the message now

            try:
                reference = self.senders[message.channel].send(outgoing)
            except UnreachableError as exc:
                if self._route(db, message, kind, facts, leaving=f"unreachable ({exc})") is None:
                    continue
                self._finish(db, message, MessageStatus.FAILED, f"no channel reached the patient ({exc})", report)
            except PermanentSendError as exc:
                self._finish(db, message, MessageStatus.FAILED, str(exc), report)
            except TransientSendError as exc:
                self._retry(db, message, str(exc), report, exc.retry_after)
            except AmbiguousSendError as exc:
                self._finish(db, message, MessageStatus.NEEDS_RECONCILIATION, str(exc), report)
            else:
                self._finish(db, message, MessageStatus.SENT, "", report, provider_ref=reference, sent_at=self.clock.now())
            return

    def _mark_in_flight(self, db, message: Message) -> bool:
        """Record the attempt before the provider hears of it, only while our lease still holds.

        "Still holds" by the clock the claims go by (the database's, on the system clock): a host
        whose clock runs slow must not go on sending a message whose lease others already see run out."""
        db.add(message)
        db.flush()
        clock = lease_clock(self.engine, self._lease_now())
        server = not isinstance(clock, datetime)  # the server's clock, read inside the statement
        marked = db.connection().execute(_in_flight(server), {
            "id_": message.id, "owner": self.owner, **({} if server else {"now": clock})})
        if marked.rowcount != 1:
            db.rollback()
            return False
        db.commit()
        # the UPDATE wrote these; tell the session so, or a later False would look like no change
        set_committed_value(message, "in_flight", True)
        set_committed_value(message, "attempts", message.attempts + 1)
        return True

    def _outgoing(self, message: Message, kind: MessageKind, facts: Facts) -> Outgoing:
        rendered = compose(self.config, kind, message, facts)
        return Outgoing(message_id=message.id, key=hashlib.sha256(message.key.encode()).hexdigest()[:32],
                        channel=message.channel, to=message.address, body=rendered.body, language=message.language,
                        subject=rendered.subject, html=rendered.html, asks_reply=message.asks_reply,
                        reply_to=self._reply_to(message))

    def _reply_to(self, message: Message) -> str | None:
        domain = self.config.sendgrid.reply_domain
        if message.channel != "email" or not domain or not message.reply_token:
            return None
        return f"reply+{message.reply_token}@{domain}"

    def _route(self, db, message: Message, kind: MessageKind, facts: Facts, leaving: str | None = None) -> str | None:
        """Point the message at where the mirror says it goes now (:func:`~vitalsync.dispatch.recheck.route`),
        each change a history row; else why no channel can carry it."""
        where = route(db, message, kind, facts, self.senders, leaving=leaving)
        if isinstance(where, str):
            return where
        now = self.clock.now()
        for note in where.notes:
            db.add(_event(message, now, note))
        message.channel, message.address, message.language = where.channel, where.address, where.language
        message.in_flight = False
        return None

    def _retry(self, db, message: Message, why: str, report: DispatchReport, wait: float | None = None) -> None:
        if message.attempts >= MAX_ATTEMPTS:
            self._finish(db, message, MessageStatus.FAILED, f"gave up after {message.attempts} attempts: {why}", report)
            return
        message.in_flight = False
        backoff = 30 * 2 ** message.attempts
        message.send_at = self.clock.now() + timedelta(seconds=max(backoff, wait or 0))
        message.reason = why
        release(message)
        db.add(message)
        db.commit()
        report.retried += 1

    def _drop(self, db, message: Message, status: str, reason: str, report: DispatchReport) -> None:
        decision = DecisionKind.CANCELLED if status == MessageStatus.CANCELLED else DecisionKind.SKIPPED
        decide(db, key=f"{message.key}|{decision}|dispatch", at=self.clock.now(), kind=message.kind,
               decision=decision, reason=reason, appointment_key=message.appointment_key,
               patient_key=message.patient_key, message_id=message.id, channel=message.channel)
        self._finish(db, message, MessageStatus(status), reason, report)

    def _finish(self, db, message: Message, status: MessageStatus, reason: str, report: DispatchReport,
                **values) -> None:
        """End the attempt (lease released, no longer in flight) with ``status`` and ``values``, committed."""
        values.update(in_flight=False, lease_owner=None, lease_until=None)
        if not transition(db, message, status, at=self.clock.now(), source="dispatch", detail=reason, also=values):
            store(db, message, **values)
        db.commit()
        field = {MessageStatus.SENT: "sent", MessageStatus.FAILED: "failed",
                 MessageStatus.NEEDS_RECONCILIATION: "unsure"}.get(status, "dropped")
        setattr(report, field, getattr(report, field) + 1)


@cache
def _in_flight(server: bool):
    """The UPDATE that marks a message in flight while its lease holds: judged by PostgreSQL's clock
    (``server``), or by the ``now`` parameter. Built once (its cache key is then computed once)."""
    table = Message.__table__
    until_now = SERVER_NOW if server else bindparam("now")
    return (update(table).where(table.c.id == bindparam("id_"), table.c.lease_owner == bindparam("owner"),
                                table.c.lease_until > until_now, table.c.status == MessageStatus.NOT_SENT.value)
            .values(in_flight=True, attempts=table.c.attempts + 1))


def _event(message: Message, at, detail: str) -> MessageEvent:
    return MessageEvent(message_id=message.id, at=at, status=MessageStatus.NOT_SENT, source="dispatch", detail=detail)


def _zone(name: str | None) -> ZoneInfo | None:
    return ZoneInfo(name) if name else None
