"""FHIR R4 resources become vitalsync records: the corners real servers send."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vitalsync.core.vocab import AppointmentStatus
from vitalsync_connectors.fhir import mapping

NEW_YORK = ZoneInfo("America/New_York")


def appointment(**fields) -> dict:
    return {"resourceType": "Appointment", "id": "7", "status": "booked", "start": "2026-03-05T09:00:00-05:00",
            "end": "2026-03-05T09:30:00-05:00",
            "participant": [{"actor": {"reference": "Patient/1"}}, {"actor": {"reference": "Location/L1"}}], **fields}


@pytest.mark.parametrize("status, expected", [
    ("booked", AppointmentStatus.SCHEDULED), ("pending", AppointmentStatus.SCHEDULED),
    ("arrived", AppointmentStatus.SCHEDULED), ("checked-in", AppointmentStatus.SCHEDULED),
    ("fulfilled", AppointmentStatus.COMPLETED), ("cancelled", AppointmentStatus.CANCELLED),
    ("noshow", AppointmentStatus.NO_SHOW)])
def test_appointment_statuses_map_to_vitalsyncs(status, expected):
    assert mapping.appointment(appointment(status=status), NEW_YORK).status is expected


@pytest.mark.parametrize("status", ["entered-in-error", "proposed", "waitlist"])
def test_errors_wishes_and_waiting_lists_are_not_appointments(status):
    assert mapping.appointment(appointment(status=status), NEW_YORK) is None


def test_a_cancelled_request_that_never_had_a_time_is_gone():
    resource = appointment(status="cancelled")
    del resource["start"], resource["end"]
    assert mapping.appointment(resource, NEW_YORK) is None


def test_an_unknown_status_is_unreadable():
    with pytest.raises(mapping.Unreadable, match="Appointment/7: unknown status 'tentative'"):
        mapping.appointment(appointment(status="tentative"), NEW_YORK)


def test_minutes_duration_gives_the_end_when_there_is_none():
    resource = appointment(minutesDuration=45)
    del resource["end"]
    record = mapping.appointment(resource, NEW_YORK)
    assert record.end - record.start == timedelta(minutes=45)


def test_a_time_without_an_offset_is_read_in_the_practices_zone():
    record = mapping.appointment(appointment(start="2026-07-01T09:00:00", end="2026-07-01T09:30:00"), NEW_YORK)
    assert record.start == datetime(2026, 7, 1, 9, 0, tzinfo=NEW_YORK) and record.start.utcoffset() is not None


def test_references_may_be_absolute_or_versioned_and_the_first_of_each_type_counts():
    record = mapping.appointment(appointment(participant=[
        {"actor": {"reference": "https://ehr.example.org/fhir/Patient/42/_history/3"}},
        {"actor": {"reference": "Practitioner/9"}}, {"actor": {"reference": "Practitioner/10"}},
        {"actor": {"display": "Room 2"}}, {"actor": {"reference": "Location/L2"}}]), NEW_YORK)
    assert (record.patient_key, record.provider_key, record.location_key) == ("42", "9", "L2")


def test_the_type_comes_from_appointment_type_else_service_type():
    assert mapping.appointment(appointment(appointmentType={"coding": [{"code": "ROUTINE", "display": "Routine"}]}),
                               NEW_YORK).type == "Routine"
    assert mapping.appointment(appointment(serviceType=[{"text": "Hygiene"}]), NEW_YORK).type == "Hygiene"


def test_the_official_name_wins_and_a_text_only_name_is_split():
    resource = {"id": "1", "name": [{"use": "nickname", "given": ["Bea"]},
                                    {"use": "official", "given": ["Beatriz", "Ana"], "family": "Luna"}]}
    assert (mapping.patient(resource, "US").first_name, mapping.patient(resource, "US").last_name) == ("Beatriz", "Luna")
    texted = mapping.patient({"id": "2", "name": [{"text": "Mary Ann Jones"}]}, "US")
    assert (texted.first_name, texted.last_name) == ("Mary Ann", "Jones")


def test_old_numbers_are_skipped_and_rank_orders_the_rest():
    record = mapping.patient({"id": "1", "telecom": [
        {"system": "phone", "use": "old", "value": "(201) 555-0100"},
        {"system": "phone", "use": "mobile", "value": "(201) 555-0111", "rank": 2},
        {"system": "phone", "use": "mobile", "value": "(201) 555-0122", "rank": 1},
        {"system": "email", "value": "not an address"}, {"system": "email", "value": "a@example.com; b@example.com"}]}, "US")
    assert (record.mobile, record.landline, record.email) == ("+12015550122", None, "a@example.com")


def test_a_number_without_a_country_code_is_read_in_the_configured_region():
    record = mapping.patient({"id": "1", "telecom": [{"system": "sms", "value": "07911 123456"}]}, "GB")
    assert record.mobile == "+447911123456"


def test_language_comes_from_the_preferred_communication_or_the_first():
    def language(*communication):
        return mapping.patient({"id": "1", "communication": list(communication)}, "US").language
    assert language({"language": {"coding": [{"code": "en"}]}},
                    {"language": {"coding": [{"code": "es-MX"}]}, "preferred": True}) == "es"
    assert language({"language": {"text": "Spanish"}}) == "es"
    assert language() == "en"


@pytest.mark.parametrize("life", [{"deceasedBoolean": True}, {"deceasedDateTime": "2025-01-02"}, {"active": False}])
def test_deceased_and_inactive_patients_are_inactive(life):
    assert mapping.patient({"id": "1", **life}, "US").active is False


def test_a_living_patient_is_active():
    assert mapping.patient({"id": "1", "deceasedBoolean": False}, "US").active is True


def test_a_practitioner_is_named_as_a_patient_would_read_it():
    resource = {"id": "3", "name": [{"prefix": ["Dr."], "given": ["Priya"], "family": "Nair", "suffix": ["DDS"]}]}
    assert mapping.practitioner(resource).name == "Dr. Priya Nair, DDS"


def test_a_location_with_a_zone_that_does_not_exist_gets_the_configured_one():
    resource = {"id": "L1", "name": "Main", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Mars/Olympus"}]}
    assert mapping.location(resource, "America/Chicago", "US").timezone == "America/Chicago"
