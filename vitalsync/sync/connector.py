"""The connector seam: one small Protocol and the records it yields.

A connector reads a practice-management system and returns a :class:`Batch` of records. It is
found by its ``[connector] type`` in the entry-point group ``vitalsync.connectors`` and built by
``from_config`` from its own ``Options`` (see connectors/README.md). It never
writes patient details back; one that can write a patient's answer (confirmed / declined) to the
PMS also implements :class:`WritesBack`. Its errors say what the caller does next:

* :class:`~vitalsync.core.errors.RetryLater` — the PMS or the network is away (retried with backoff);
* :class:`~vitalsync.core.errors.PersonMustAct` — bad credentials, a missing table, a wrong path.

Times are time-zone aware; phones are E.164 (``+15551234567``) or ``None``; keys are the PMS's own
primary keys as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Iterator, Literal, Protocol, runtime_checkable

from vitalsync.core.connector_config import ConnectorOptions  # here too: a connector's whole contract
from vitalsync.core.vocab import AppointmentStatus, Channel

if TYPE_CHECKING:
    from vitalsync.core.config import Config


@dataclass(frozen=True)
class LocationRecord:
    key: str
    name: str
    timezone: str
    phone: str = ""


@dataclass(frozen=True)
class ProviderRecord:
    key: str
    name: str
    location_key: str | None = None


@dataclass(frozen=True)
class PatientRecord:
    key: str
    first_name: str
    last_name: str
    mobile: str | None = None  #: the only number that may be texted
    landline: str | None = None  #: voice only
    email: str | None = None
    sms_ok: bool = True  #: consent per channel, as the PMS records it
    email_ok: bool = True
    voice_ok: bool = True
    language: str = "en"
    timezone: str | None = None  #: the patient's own zone, when the PMS knows it
    guarantor_key: str | None = None  #: the family head; a family shares this key
    active: bool = True  #: deceased, deleted or archived patients get nothing


@dataclass(frozen=True)
class AppointmentRecord:
    key: str
    patient_key: str
    location_key: str
    start: datetime
    end: datetime
    status: AppointmentStatus = AppointmentStatus.SCHEDULED
    provider_key: str | None = None
    type: str = ""


@dataclass(frozen=True)
class RecallRecord:
    key: str
    patient_key: str
    due: date
    type: str = ""
    active: bool = True


@dataclass(frozen=True)
class PickupRecord:
    key: str
    patient_key: str
    location_key: str
    ready_at: datetime
    picked_up: bool = False


@dataclass(frozen=True)
class OptOutRecord:
    """An opt-out the PMS itself records (Open Dental's ``commoptout``)."""

    patient_key: str
    channel: Channel


@dataclass
class Batch:
    """What one read of a connector returned.

    ``patients``, ``appointments`` and ``recalls`` may be re-iterable streams with ``len()`` rather
    than lists (a big PMS is read in chunks); the mirror reads each once, and ``rejected`` may fill
    while they are read. ``complete`` means a full read: a row of a complete batch's kinds that the mirror holds but the
    batch lacks is gone from the PMS. An incremental batch only adds and changes, and names deleted
    appointments in ``deleted_appointments``.
    """

    complete: bool
    cursor: str | None = None  #: the high-water mark to pass as ``since`` next time
    locations: list[LocationRecord] = field(default_factory=list)
    providers: list[ProviderRecord] = field(default_factory=list)
    patients: list[PatientRecord] = field(default_factory=list)
    appointments: list[AppointmentRecord] = field(default_factory=list)
    recalls: list[RecallRecord] = field(default_factory=list)
    pickups: list[PickupRecord] = field(default_factory=list)
    opt_outs: list[OptOutRecord] = field(default_factory=list)
    deleted_appointments: list[str] = field(default_factory=list)
    #: appointment keys seen but not readable this time: a complete batch does not delete them
    unreadable_appointments: list[str] = field(default_factory=list)
    #: patient keys seen but not readable this time: a complete batch does not retire them
    unreadable_patients: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  #: rows the connector could not read, and why (no PHI)

    @property
    def rows(self) -> int:
        return sum(
            len(rows)
            for rows in (self.locations, self.providers, self.patients, self.appointments,
                         self.recalls, self.pickups, self.opt_outs, self.deleted_appointments)
        )


@dataclass(frozen=True)
class StoredForm:
    """How a consumer stores times, dates and flags, for streams that can hand values over so.

    A full sync into an empty mirror writes half a million rows. A stream that works each distinct
    value out once (Open Dental's local times, consents, due dates) can convert it into the form the
    mirror stores at that moment, once, instead of the mirror converting every row's values again.
    In this form vocabulary (``AppointmentStatus``) is its plain text.
    """

    instant: Callable[[datetime], object]  #: an aware datetime as stored
    day: Callable[[date], object]
    flag: Callable[[bool], object]


def stored_chunks(records: Iterable, size: int, form: StoredForm) -> Iterator[list[tuple]] | None:
    """``records`` as lists of tuples in their record's field order with values in ``form``, when the
    stream can hand them over so (``tuples(size, form)``); else None, and the consumer converts."""
    tuples = getattr(records, "tuples", None)
    return None if tuples is None else tuples(size, form)


def record_chunks(records: Iterable, kind: type, size: int) -> Iterator[list[tuple]]:
    """``records`` as lists of plain tuples in ``kind``'s field order, ``size`` at a time.

    A full sync moves half a million rows; building a record per row and taking it apart again in
    the mirror costs more than the database's own work. So a stream may offer ``tuples(size)``,
    handing over the tuples it built (with exactly the values its records would hold; with
    ``tuples(size, form)`` in a ``StoredForm``, see ``stored_chunks``); any other iterable of
    records is taken apart here.
    """
    tuples = getattr(records, "tuples", None)
    if tuples is not None:
        yield from tuples(size)
        return
    values = attrgetter(*(f.name for f in fields(kind)))
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield list(map(values, chunk))


class Connector(Protocol):
    """A practice-management system, read-only.

    ``Options`` is the model of its ``[connector]`` keys: :class:`ConnectorOptions` (``type``,
    ``timezone``, ``default_region``) plus its own, validated when the config loads, so a wrong key
    is named with the file before anything runs. ``from_config`` builds the connector from them;
    ``config`` gives the rest (``config.relative`` for paths, ``config.path`` for secrets,
    ``config.schedule.timezone`` when ``timezone`` is empty).
    """

    name: str
    Options: ClassVar[type[ConnectorOptions]]

    @classmethod
    def from_config(cls, options: ConnectorOptions, config: Config) -> Connector:
        """The connector ``options`` describe; ConfigError naming the key for what the model cannot check."""

    def read(self, since: str | None, now: datetime) -> Batch:
        """Everything when ``since`` is None, else what changed since that cursor."""

    def check(self) -> str:
        """A one-line description of the reachable source, or raise why it is not reachable."""


class PushConnector(Connector, Protocol):
    """A source that pushes changes (HL7 over MLLP): each message arrives as one incomplete Batch.

    ``start(sink)`` listens in the background and calls ``sink(batch)`` once per message, in
    arrival order; the source is acknowledged only when the sink returns (it raises to refuse).
    """

    def start(self, sink: Callable[[Batch], None]) -> PushConnector: ...

    def stop(self) -> None: ...


#: what a patient answered, as written back: a MessageStatus value
Answer = Literal["confirmed", "declined"]


@runtime_checkable
class WritesBack(Protocol):
    """A connector that can write a patient's answer to the PMS (``[connector] write_back``).

    ``write_answer`` sets the appointment's confirmation state; calling it twice with the same answer
    leaves the PMS as once (a retry after a crash must be harmless). It raises
    :class:`~vitalsync.core.errors.RetryLater` while the PMS is away and
    :class:`~vitalsync.core.errors.PersonMustAct` when it refuses (bad key, unknown appointment).
    """

    def write_answer(self, appointment_key: str, answer: Answer) -> None: ...
