"""Reading SIU messages: separators, escapes, character sets, times, durations, people and places."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vitalsync.core.vocab import AppointmentStatus as Status
from vitalsync_connectors.hl7 import siu as siu_reader
from vitalsync_connectors.hl7.ack import ack
from vitalsync_connectors.hl7.message import MessageError, decode, parse
from vitalsync_connectors.hl7.mllp import FrameReader, FramingError
from vitalsync_connectors.hl7.testing import Reply, segment, siu

NY = ZoneInfo("America/New_York")
MSH = "MSH|^~\\&|PMS|CLINIC|VITALSYNC|CLINIC|20260302||SIU^{event}^SIU_S12|C1|P|{version}"


def read(text: str, region: str = "US"):
    return siu_reader.read(parse(text), NY, region)


def message(*segments: str, event: str = "S12", version: str = "2.5.1") -> str:
    return "\r".join([MSH.format(event=event, version=version), *segments]) + "\r"


SCH = segment("SCH", {2: "1001"})
PID = segment("PID", {3: "P1"})
AIL = segment("AIL", {1: "1", 3: "MAIN"})


def test_separators_come_from_msh_1_and_msh_2_and_escapes_are_decoded():
    text = ("MSH#$%!&#PMS#CLINIC#####SIU$S12#C1#P#2.5.1\r"
            "SCH##1001#######30#min\rTQ1#1#####30$min#202603101000\r"
            "PID#1##P1##O!F!Brien&Jr$Se!S!n!.br!!X4D!!H!x!N!\rAIL#1##MAIN\r")
    batch = read(text)
    assert (batch.patients[0].last_name, batch.patients[0].first_name) == ("O#Brien", "Se$n\nMx")


def test_standard_escapes_stand_for_their_separators():
    pid = segment("PID", {3: "P1", 5: "Smith\\T\\Co\\R\\\\E\\^A\\F\\B"})
    batch = read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL))
    assert (batch.patients[0].last_name, batch.patients[0].first_name) == ("Smith&Co~\\", "A|B")


def test_segments_ended_by_newlines_instead_of_carriage_returns_are_read():
    text = message(SCH, "TQ1|1|||||30^min|202603101000", PID, AIL).replace("\r", "\r\n")
    assert read(text).appointments[0].key == "1001"


@pytest.mark.parametrize("written, expected", [
    ("202603101000", datetime(2026, 3, 10, 10, 0, tzinfo=NY)),  # no offset: the PMS's local time
    ("20260310100000-0600", datetime(2026, 3, 10, 16, 0, tzinfo=timezone.utc)),
    ("20260310150000.1234+0000", datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)),
    ("202611010130", datetime(2026, 11, 1, 1, 30, tzinfo=NY)),  # the repeated hour: its first occurrence
    ("2026031014", datetime(2026, 3, 10, 14, 0, tzinfo=NY)),  # to the hour
])
def test_times_are_aware_and_in_the_pms_zone(written, expected):
    [appointment] = read(message(SCH, f"TQ1|1|||||30^min|{written}", PID, AIL)).appointments
    assert appointment.start == expected and appointment.start.tzinfo == NY


@pytest.mark.parametrize("timing, length", [
    ("TQ1|1|||||45^min|202603101000", timedelta(minutes=45)),
    ("TQ1|1|||||1^h&&ANS+|202603101000", timedelta(hours=1)),
    ("TQ1|1|||||30^min|202603101000|202603101020", timedelta(minutes=20)),  # an end beats a duration
    (segment("SCH", {2: "1001", 9: "40", 10: "MIN"}) + "\rTQ1|1||||||202603101000", timedelta(minutes=40)),
    (segment("SCH", {2: "1001", 11: "^^M50^202603101000"}), timedelta(minutes=50)),  # v2.3 TQ duration
    (segment("SCH", {2: "1001", 11: "^^^202603101000^202603101115"}), timedelta(minutes=75)),
    (segment("AIL", {1: "1", 3: "WEST", 6: "202603101000", 9: "2", 10: "hr"}), timedelta(hours=2)),
])
def test_the_end_comes_from_an_end_time_else_from_the_first_duration_given(timing, length):
    segments = [timing] if timing.startswith("SCH") else [SCH, timing]
    [appointment] = read(message(*segments, PID, AIL)).appointments
    assert appointment.start == datetime(2026, 3, 10, 10, 0, tzinfo=NY) and appointment.end - appointment.start == length


@pytest.mark.parametrize("timing, reason", [
    ("TQ1|1||||||202603101000", "no end time and no duration"),
    ("TQ1|1|||||30^min", "no start time"),
    ("TQ1|1||||||202603101000|202603100900", "ends before it starts"),
    ("TQ1|1|||||0^min|202603101000", "TQ1-6 is not a plausible appointment length"),
    ("TQ1|1|||||ten^min|202603101000", "TQ1-6 is not a number"),
])
def test_an_appointment_without_a_usable_time_is_refused(timing, reason):
    with pytest.raises(MessageError, match=reason):
        read(message(SCH, timing, PID, segment("AIL", {1: "1", 3: "MAIN"})))


@pytest.mark.parametrize("places, key, name", [
    ([segment("AIL", {1: "1", 3: "MAIN^Op 1^^PMS^^^^^Main Street Clinic"})], "MAIN", "Main Street Clinic"),
    ([segment("AIL", {1: "1", 3: "^Op 1^^&Sunny Dental^^C"})], "Sunny Dental", "Sunny Dental"),  # Open Dental, no clinics
    ([segment("AIL", {1: "1", 2: "D", 3: "OLD"}), segment("AIL", {1: "2", 3: "NEW"})], "NEW", "NEW"),
    ([segment("PV1", {1: "1", 3: "EAST^^^PMS"})], "EAST", "EAST"),
    ([], "CLINIC", "CLINIC"),  # the sending facility, MSH-4
])
def test_the_location_is_the_first_kept_ail_else_the_visit_else_the_sending_facility(places, key, name):
    batch = read(message(SCH, "TQ1|1|||||30^min|202603101000", PID, *places))
    assert batch.appointments[0].location_key == key and [(loc.key, loc.name) for loc in batch.locations] == [(key, name)]


def test_the_provider_is_the_first_aip_else_the_attending_doctor_else_none():
    timing = "TQ1|1|||||30^min|202603101000"
    with_aip = read(message(SCH, timing, PID, AIL, segment("AIP", {1: "1", 3: "7^Lee^Ann^^^Dr", 4: "d"})))
    assert [(p.key, p.name) for p in with_aip.providers] == [("7", "Ann Lee")]
    assert read(message(SCH, timing, PID, segment("PV1", {1: "1", 7: "9^Roe^Rick"}), AIL)).providers[0].key == "9"
    nobody = read(message(SCH, timing, PID, AIL))
    assert nobody.providers == [] and nobody.appointments[0].provider_key is None


def test_only_a_cell_phone_is_textable_and_numbers_for_someone_else_are_skipped():
    home = "^EMR^CP^^1^917^5550111~^PRN^FX^^1^212^5550112~^PRN^CP^^^^12~^ORN^CP^^44^7911^123456~^PRN^PH^^^^^^^^^2125550113"
    pid = segment("PID", {3: "P1", 13: home, 14: "^WPN^PH^^1^212^5550114~^NET^Internet^jane@example.org"})
    [person] = read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL)).patients
    assert (person.mobile, person.landline, person.email) == ("+447911123456", "+12125550113", "jane@example.org")


def test_a_home_phone_written_plainly_is_a_landline_in_the_default_region():
    pid = segment("PID", {3: "P1", 13: "020 7946 0958"})
    [person] = read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL), region="GB").patients
    assert (person.mobile, person.landline) == (None, "+442079460958")


@pytest.mark.parametrize("field, language", [("spa", "es"), ("^Spanish", "es"), ("VIE^Vietnamese^ISO639", "vi"), ("", "en")])
def test_the_language_comes_from_pid_15(field, language):
    pid = segment("PID", {3: "P1", 15: field})
    assert read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL)).patients[0].language == language


def test_a_deceased_patient_is_inactive_and_the_v23_external_id_is_a_fallback_key():
    pid = segment("PID", {2: "CHART-7", 5: "Doe^John", 30: "Y"})
    [person] = read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL)).patients
    assert (person.key, person.active) == ("CHART-7", False)


@pytest.mark.parametrize("event, filler, expected", [
    ("S12", "Waitlist", Status.CANCELLED), ("S12", "Pending", Status.SCHEDULED), ("S14", "Confirmed", Status.SCHEDULED),
    ("S13", "Noshow", Status.NO_SHOW), ("S15", "Booked", Status.CANCELLED),
])
def test_the_filler_status_refines_s12_to_s14_and_the_event_decides_the_rest(event, filler, expected):
    sch = segment("SCH", {2: "1001", 25: filler})
    [appointment] = read(message(sch, "TQ1|1|||||30^min|202603101000", PID, AIL, event=event)).appointments
    assert appointment.status is expected


def test_a_modification_to_deleted_is_a_deletion():
    batch = read(message(segment("SCH", {2: "1001", 25: "Deleted"}), event="S14"))
    assert batch.deleted_appointments == ["1001"] and not batch.appointments


def test_an_explicit_null_is_an_empty_value():
    pid = segment("PID", {3: "P1", 5: '""^Jane', 13: '""', 15: '""'})
    [person] = read(message(SCH, "TQ1|1|||||30^min|202603101000", pid, AIL)).patients
    assert (person.last_name, person.landline, person.language) == ("", None, "en")


def test_the_placer_id_is_the_key_when_there_is_no_filler_id():
    sch = segment("SCH", {1: "PLACER-5^EHR"})
    assert read(message(sch, "TQ1|1|||||30^min|202603101000", PID, AIL)).appointments[0].key == "PLACER-5"


def test_a_message_in_latin_1_is_read_by_its_declared_character_set():
    text = siu(name="Müller^Jürgen").replace("|2.5.1", "|2.5.1||||||8859/1", 1)
    decoded, codec = decode(text.encode("latin-1"))
    assert codec == "iso8859-1" and read(decoded).patients[0].last_name == "Müller"
    undeclared, codec = decode(siu(name="Müller^Jürgen").encode("cp1252"))
    assert codec == "cp1252" and "Müller" in undeclared


@pytest.mark.parametrize("charset, data, reason", [
    ("KLINGON", "é".encode("utf-8"), "character set vitalsync does not read"),
    ("UNICODE UTF-8", "é".encode("latin-1"), "not in its declared character set"),
])
def test_a_message_not_in_a_readable_character_set_is_refused(charset, data, reason):
    header = ("MSH|^~\\&|PMS|CLINIC|||20260302||SIU^S12|C1|P|2.5.1||||||" + charset + "\r").encode()
    with pytest.raises(MessageError, match=reason):
        decode(header + b"PID|1||P1||" + data + b"\r")


def test_the_ack_uses_the_message_separators_and_escapes_its_reason():
    text = "MSH#$%!&#PMS#CLINIC#VS#VS#20260302##SIU$S12#C!F!7#P#2.5.1\rSCH##1001\r"
    error = MessageError("SCH-11.4 is not # a $ date", where="SCH-11.4", code=102)
    reply = ack(parse(text), datetime(2026, 3, 2, 12, tzinfo=timezone.utc), error=error).split("\r")
    assert reply[0].startswith("MSH#$%!&#VS#VS#PMS#CLINIC#20260302120000+0000##ACK$S12$ACK#")
    assert reply[1] == "MSA#AE#C!F!7#SCH-11.4 is not !F! a !S! date"
    assert reply[2].split("#")[2:4] == ["SCH$1$11$1$4", "102$Data type error$HL70357"]


def test_the_frame_reader_drops_bytes_between_messages_and_cuts_a_message_without_an_end():
    reader = FrameReader(max_bytes=100)
    assert reader.feed(b"\r\n\x0bONE\x1c\r\n\n\x0bTW") == [b"ONE"]
    assert reader.feed(b"O\x1c") == [] and reader.feed(b"\r") == [b"TWO"]
    with pytest.raises(FramingError):
        reader.feed(b"\x0b" + b"x" * 200)


def test_a_reply_reads_its_msa():
    reply = Reply("MSH|^~\\&|VS\rMSA|AE|C1|why\r")
    assert (reply.code, reply.control, reply.reason) == ("AE", "C1", "why")
