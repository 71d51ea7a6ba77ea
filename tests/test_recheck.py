"""The last look before a send goes by what the PMS says *now*: a sync between planning and dispatch.

Each test plans a message, changes the practice in the fake PMS, syncs (no planning pass after it:
the daemon dispatches every 30 seconds and plans far less often), then dispatches at the send
time. The message goes to the current address, on a channel the patient may still be reached on,
in the patient's current language, or not at all; each change is a history row (source dispatch).
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.vocab import Channel, MessageStatus
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.sync.connector import OptOutRecord, PickupRecord, RecallRecord

NEW_MOBILE = "+12125559999"


def planned(runtime, connector, kind: str = "appointment_reminder", **ann) -> Message:
    """Ann (patient 1) with an appointment on Wednesday 4 March at 10:00, planned; her -2d reminder.

    Only ``kind`` runs, so the one message dispatch sends is the one under test."""
    runtime.kinds = {name: value for name, value in runtime.kinds.items() if name == kind}
    open_practice(connector, patient("1", "Ann", **ann))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    return first(runtime, kind)


def first(runtime, kind: str = "appointment_reminder") -> Message:
    with session(runtime.engine) as db:
        return db.exec(select(Message).where(Message.kind == kind).order_by(Message.send_at, Message.id)).first()


def pms_changes_ann(connector, **changes) -> None:
    connector.practice.patients = [replace(p, **changes) if p.key == "1" else p for p in connector.practice.patients]


def sync_then_dispatch(runtime, at: datetime) -> None:
    """A sync, then dispatch at ``at`` with no planning pass in between."""
    runtime.sync_once()
    runtime.clock.set(at)
    runtime.dispatch_once()


def dispatch_notes(runtime, message_id: int) -> list[str]:
    """The history rows dispatch wrote while the message was still waiting: what it changed."""
    with session(runtime.engine) as db:
        return list(db.exec(select(MessageEvent.detail).where(MessageEvent.message_id == message_id,
                                                               MessageEvent.source == "dispatch",
                                                               MessageEvent.status == MessageStatus.NOT_SENT)
                            .order_by(MessageEvent.id)).all())


def again(runtime, message: Message) -> Message:
    with session(runtime.engine) as db:
        return db.get(Message, message.id)


def test_a_mobile_number_changed_after_planning_gets_the_text_at_the_new_number(runtime, connector):
    message = planned(runtime, connector)
    assert (message.channel, message.address, message.send_at) == ("sms", "+12125550001", ny(2, 10))
    pms_changes_ann(connector, mobile=NEW_MOBILE)
    sync_then_dispatch(runtime, ny(2, 10))

    [outgoing] = runtime.sender.sent
    assert (outgoing.channel, outgoing.to) == ("sms", NEW_MOBILE)
    sent = again(runtime, message)
    assert (sent.status, sent.address) == (MessageStatus.SENT, NEW_MOBILE)
    notes = dispatch_notes(runtime, message.id)
    assert notes[0] == ("sms: the patient's mobile number changed in the PMS since planning; sending to the current one")
    assert NEW_MOBILE not in " ".join(notes)  # the history names what changed, never the number


def test_a_mobile_number_removed_after_planning_falls_back_to_the_kinds_next_channel(runtime, connector):
    message = planned(runtime, connector)
    pms_changes_ann(connector, mobile=None)
    sync_then_dispatch(runtime, ny(2, 10))

    [outgoing] = runtime.sender.sent
    assert (outgoing.channel, outgoing.to) == ("email", "ann1@example.com")
    assert (again(runtime, message).status, again(runtime, message).channel) == (MessageStatus.SENT, "email")
    assert dispatch_notes(runtime, message.id)[0] == "sms: no mobile number; falling back to email"


def test_with_no_channel_left_the_message_is_skipped_with_the_reason(runtime, connector):
    message = planned(runtime, connector)
    pms_changes_ann(connector, mobile=None, email=None)
    sync_then_dispatch(runtime, ny(2, 10))

    assert runtime.sender.sent == []
    skipped = again(runtime, message)
    assert skipped.status == MessageStatus.SKIPPED
    assert skipped.reason == ("no usable contact now (sms: no mobile number; email: no email address; "
                              "voice: no phone number)")


def test_sms_consent_withdrawn_in_the_pms_means_no_text(runtime, connector):
    message = planned(runtime, connector)
    pms_changes_ann(connector, sms_ok=False)
    sync_then_dispatch(runtime, ny(2, 10))

    assert [o.channel for o in runtime.sender.sent] == ["email"]
    assert dispatch_notes(runtime, message.id)[0] == "sms: no consent in the PMS; falling back to email"


def test_an_opt_out_recorded_in_the_pms_after_planning_means_no_text(runtime, connector):
    message = planned(runtime, connector)
    connector.practice.opt_outs = [OptOutRecord("1", Channel.SMS), OptOutRecord("1", Channel.EMAIL)]
    sync_then_dispatch(runtime, ny(2, 10))

    assert [(o.channel, o.to) for o in runtime.sender.sent] == [("voice", "+12125550001")]
    assert dispatch_notes(runtime, message.id)[0] == "sms: opted out; email: opted out; falling back to voice"


def test_a_language_changed_after_planning_is_the_language_the_message_is_written_in(runtime, connector):
    message = planned(runtime, connector)
    assert message.language == "en"
    pms_changes_ann(connector, language="es")
    sync_then_dispatch(runtime, ny(2, 10))

    [outgoing] = runtime.sender.sent
    assert outgoing.language == "es" and "su cita es el miércoles" in outgoing.body
    assert again(runtime, message).language == "es"
    assert dispatch_notes(runtime, message.id)[0] == "language changed in the PMS since planning (en → es)"


def test_an_unchanged_message_goes_as_planned_without_notes(runtime, connector):
    message = planned(runtime, connector)
    sync_then_dispatch(runtime, ny(2, 10))
    assert [(o.channel, o.to, o.language) for o in runtime.sender.sent] == [("sms", "+12125550001", "en")]
    assert dispatch_notes(runtime, message.id) == []


def recall_planned(runtime, connector) -> Message:
    """Ann's recall, due Monday 16 March: its -14d message goes today at 10:00."""
    open_practice(connector, patient("1", "Ann"))
    connector.practice.recalls = [RecallRecord("R1", "1", date(2026, 3, 16))]
    runtime.sync_once()
    runtime.plan_once()
    message = first(runtime, "recall")
    assert (message.send_at, message.status) == (ny(2, 10), MessageStatus.NOT_SENT)
    return message


def test_a_recall_closed_in_the_pms_after_planning_is_not_sent(runtime, connector):
    message = recall_planned(runtime, connector)
    connector.practice.recalls = [replace(connector.practice.recalls[0], active=False)]
    sync_then_dispatch(runtime, ny(2, 10))
    assert runtime.sender.sent == []
    assert (again(runtime, message).status, again(runtime, message).reason) == (
        MessageStatus.CANCELLED, "recall no longer due (closed or removed in the PMS)")


def test_a_recall_whose_due_date_moved_is_not_sent_for_the_old_date(runtime, connector):
    message = recall_planned(runtime, connector)
    connector.practice.recalls = [replace(connector.practice.recalls[0], due=date(2026, 6, 15))]
    sync_then_dispatch(runtime, ny(2, 10))
    assert runtime.sender.sent == []
    assert again(runtime, message).reason == "recall due date changed in the PMS; planned again for the new date"


def test_a_recall_for_a_patient_who_booked_since_planning_is_not_sent(runtime, connector):
    message = recall_planned(runtime, connector)
    book(connector, "A9", "1", ny(10, 9))
    sync_then_dispatch(runtime, ny(2, 10))
    assert [o for o in runtime.sender.sent if o.message_id == message.id] == []
    assert (again(runtime, message).status, again(runtime, message).reason) == (
        MessageStatus.CANCELLED, "patient booked an appointment since planning")


def test_a_recall_still_due_goes(runtime, connector):
    message = recall_planned(runtime, connector)
    sync_then_dispatch(runtime, ny(2, 10))
    assert [o.message_id for o in runtime.sender.sent] == [message.id]


def test_an_order_picked_up_after_planning_is_not_announced(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    connector.practice.pickups = [PickupRecord("P1", "1", "1", ny(2, 9))]
    runtime.sync_once()
    runtime.plan_once()
    message = first(runtime, "product_pickup")
    assert message.send_at == ny(2, 10)
    connector.practice.pickups = [replace(connector.practice.pickups[0], picked_up=True)]
    sync_then_dispatch(runtime, ny(2, 10) + timedelta(minutes=1))
    assert runtime.sender.sent == []
    assert (again(runtime, message).status, again(runtime, message).reason) == (MessageStatus.CANCELLED, "order picked up")
