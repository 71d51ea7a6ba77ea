"""Delivery callbacks committed in groups: the same outcome as one by one, nothing lost, nothing twice.

Runs on SQLite and on PostgreSQL (the ``runtime`` fixture).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from urllib.parse import urlencode

import httpx
from sqlalchemy import func
from sqlmodel import select
from twilio.request_validator import RequestValidator

from tests.test_webhooks import PUBLIC, SMS_STATUS, TOKEN, add_message, history, sms_status, status
from vitalsync.core.db import session
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.status import deliveries
from vitalsync.status.deliveries import Delivery, DeliveryWriter, record_deliveries
from vitalsync.status.record import record_delivery
from vitalsync.status.webhooks import serve, webhook_app


def test_a_group_applies_its_reports_in_order_and_never_moves_back(runtime):
    delivered, bounced, confirmed = (add_message(runtime, ref) for ref in ("SM1", "SM2", "SM3"))
    with session(runtime.engine) as db:
        db.get(Message, confirmed).status = "confirmed"
        db.commit()
    group = [Delivery("SM1", True), Delivery("SM1", True), Delivery("SM2", False, "twilio undelivered 30006"),
             Delivery("SM3", True), Delivery("SM404", True)]
    with session(runtime.engine) as db:
        known = record_deliveries(db, group, runtime.clock.now())
        db.commit()
    assert known == [True, True, True, True, False]
    assert status(runtime, delivered) == "received" and history(runtime, delivered) == ["received"]
    assert status(runtime, bounced) == "not_received"
    assert status(runtime, confirmed) == "confirmed" and history(runtime, confirmed) == []
    with session(runtime.engine) as db:
        assert db.get(Message, bounced).reason == "twilio undelivered 30006"


def test_a_group_ends_where_the_same_reports_one_by_one_end(runtime):
    """record_deliveries follows transition's rules: compared with record_delivery on twin messages,
    over a fixed mix of repeats and reversals and a few random sequences."""
    sequences = [[("A", True), ("B", False), ("A", False), ("C", True), ("B", True), ("C", True), ("A", True)]]
    for seed in range(4):
        pick = random.Random(seed)
        sequences.append([(pick.choice("ABC"), pick.random() < 0.6) for _ in range(12)])
    for n, reports in enumerate(sequences):
        for prefix in ("g", "s"):
            for ref in "ABC":
                add_message(runtime, f"{prefix}{n}{ref}")
        with session(runtime.engine) as db:
            record_deliveries(db, [Delivery(f"g{n}{ref}", ok, "" if ok else f"twilio undelivered {i}")
                                   for i, (ref, ok) in enumerate(reports)], runtime.clock.now())
            for i, (ref, ok) in enumerate(reports):
                record_delivery(db, f"s{n}{ref}", ok, runtime.clock.now(), source="provider",
                                detail="" if ok else f"twilio undelivered {i}")
            db.commit()
    with session(runtime.engine) as db:
        messages = db.exec(select(Message)).all()
        state = {m.provider_ref: (m.status, m.reason, [e.status for e in db.exec(
            select(MessageEvent).where(MessageEvent.message_id == m.id).order_by(MessageEvent.id))]) for m in messages}
    for ref in [ref for ref in state if ref.startswith("g")]:
        assert state[ref] == state["s" + ref[1:]], ref


def test_each_waiting_request_is_answered_once_its_group_is_committed(runtime):
    ids = [add_message(runtime, f"SM{i}") for i in range(40)]
    writer = DeliveryWriter(runtime.engine, runtime.clock, threading.Lock(), writers=2)

    async def all_at_once():
        return await asyncio.gather(*(writer.record(Delivery(f"SM{i}", True)) for i in range(40)),
                                    writer.record(Delivery("SM-unknown", True)))

    assert asyncio.run(all_at_once()) == [True] * 40 + [False]
    assert [status(runtime, i) for i in ids] == ["received"] * 40


def test_writers_stay_for_the_next_burst_then_end_when_idle(runtime, monkeypatch):
    """A burst after a pause reuses the waiting writer; with nothing to do for a while, writers end."""
    monkeypatch.setattr(DeliveryWriter, "IDLE_SECONDS", 0.3)
    ids = [add_message(runtime, f"SM{i}") for i in range(20)]
    writer = DeliveryWriter(runtime.engine, runtime.clock, threading.Lock(), writers=2)

    async def bursts():
        first = await asyncio.gather(*(writer.record(Delivery(f"SM{i}", True)) for i in range(10)))
        await asyncio.sleep(0.05)
        running = writer._running
        second = await asyncio.gather(*(writer.record(Delivery(f"SM{i}", True)) for i in range(10, 20)))
        return first + second, running

    answers, running = asyncio.run(bursts())
    assert answers == [True] * 20 and 1 <= running <= 2
    assert [status(runtime, i) for i in ids] == ["received"] * 20
    deadline = time.monotonic() + 5
    while writer._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer._running == 0


def test_a_request_gone_before_its_group_commits_is_recorded_all_the_same(runtime):
    message = add_message(runtime, "SM1")
    writer = DeliveryWriter(runtime.engine, runtime.clock)

    async def give_up():
        request = asyncio.ensure_future(writer.record(Delivery("SM1", True)))
        await asyncio.sleep(0)  # queued
        request.cancel()  # the client hung up
        for _ in range(100):  # the loop stays open until the writer has answered
            if status(runtime, message) == "received":
                break
            await asyncio.sleep(0.02)

    asyncio.run(give_up())
    assert status(runtime, message) == "received"


def test_a_group_that_fails_is_written_again_one_by_one(runtime, monkeypatch):
    """One report the database refuses fails its own request only; the rest of its group is recorded."""
    ids = [add_message(runtime, f"SM{i}") for i in range(5)]
    real = deliveries.record_deliveries

    def refuse_sm3(db, group, at, *kinds):
        if any(d.reference == "SM3" for d in group):
            raise RuntimeError("the database refused")
        return real(db, group, at, *kinds)

    monkeypatch.setattr(deliveries, "record_deliveries", refuse_sm3)
    writer = DeliveryWriter(runtime.engine, runtime.clock)

    async def all_at_once():
        return await asyncio.gather(*(writer.record(Delivery(f"SM{i}", True)) for i in range(5)),
                                    return_exceptions=True)

    results = asyncio.run(all_at_once())
    assert [type(r).__name__ for r in results] == ["bool", "bool", "bool", "RuntimeError", "bool"]
    assert [status(runtime, i) for i in ids] == ["received"] * 3 + ["sent", "received"]


def test_hundreds_of_signed_callbacks_over_real_http_are_each_recorded_once(runtime):
    """Concurrent keep-alive connections, repeats included: every message received, one history row each."""
    ids = [add_message(runtime, f"SM{i:04d}") for i in range(300)]
    app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                      sendgrid_public_key=None, public_url=PUBLIC)
    validator = RequestValidator(TOKEN)
    posts = []
    for i in [*range(300), *range(0, 300, 7)]:  # every 7th delivered twice
        params = sms_status(f"SM{i:04d}", "delivered")
        posts.append((urlencode(params), validator.compute_signature(PUBLIC + SMS_STATUS, params)))
    served = serve(app)
    try:
        async def post_all():
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=30) as client:
                return await asyncio.gather(*(client.post(SMS_STATUS, content=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
                    for body, signature in posts))

        responses = asyncio.run(post_all())
    finally:
        served.stop()
    assert {r.status_code for r in responses} == {200}
    assert {status(runtime, i) for i in ids} == {"received"}
    with session(runtime.engine) as db:
        assert db.exec(select(func.count()).select_from(MessageEvent)).one() == 300
