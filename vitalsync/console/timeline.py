"""The Patient page's data: every message, status change, reply and planning decision about one
patient on one timeline, and per appointment the decision trace ("why no reminder?")."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import col, or_, select

from vitalsync.console.queries import Filter, message_log
from vitalsync.core.db import session
from vitalsync.mirror.tables import Appointment, Patient
from vitalsync.queue.tables import Decision
from vitalsync.status.tables import Reply


def patient_page(engine: Engine, patient_key: str) -> dict | None:
    """None when the mirror has no such patient and nothing was ever sent about one."""
    with session(engine) as db:
        patient = db.get(Patient, patient_key)
        appointments = db.exec(select(Appointment).where(Appointment.patient_key == patient_key)
                               .order_by(col(Appointment.start).desc())).all()
        keys = [a.key for a in appointments]
        decisions = db.exec(select(Decision).where(or_(Decision.patient_key == patient_key,
                                                       col(Decision.appointment_key).in_(keys)))
                            .order_by(Decision.at, Decision.id)).all()
        replies = db.exec(select(Reply).where(Reply.patient_key == patient_key).order_by(Reply.at)).all()
    messages = message_log(engine, Filter(patient=patient_key))
    if patient is None and not messages:
        return None
    events = [{"at": e["at"], "what": "status", "text": f"{m['kind']} by {m['channel']}: {e['status']}",
               "detail": e["detail"] or e["source"], "message": m["id"]} for m in messages for e in m["history"]]
    events += [{"at": r.at.isoformat(), "what": "reply", "text": f"{r.channel}: {r.body}", "detail": r.intent,
                "message": r.message_id} for r in replies]
    events += [{"at": d.at.isoformat(), "what": "decision", "text": f"{d.kind}: {d.decision}", "detail": d.reason,
                "message": d.message_id} for d in decisions]
    trace = {a.key: [] for a in appointments}
    for d in decisions:
        if d.appointment_key in trace:
            trace[d.appointment_key].append(d)
    return {"key": patient_key, "patient": patient, "appointments": appointments, "trace": trace,
            "messages": messages, "events": sorted(events, key=lambda e: e["at"], reverse=True)}
