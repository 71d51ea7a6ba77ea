"""The SELECTs the connector runs: only the columns it maps, each table's DateTStamp for windows.

A window is ``DateTStamp >= %s AND DateTStamp < %s`` (half-open, server time), as Open Dental's own
API-subscription poller reads it. Tables without a timestamp are small and read whole each time.
"""

from __future__ import annotations

WINDOW = "DateTStamp >= %s AND DateTStamp < %s"
NO_DATE = "'0001-01-02'"  #: below this an Open Dental date is its 0001-01-01 "no value"

PREFERENCES = ("SELECT PrefName, ValueString FROM preference WHERE PrefName IN "
               "('DataBaseVersion', 'PracticeTitle', 'TextMsgOkStatusTreatAsNo', 'UpdateInProgressOnComputerName')")
CLINICS = "SELECT ClinicNum, Description, Abbr, Phone, TimeZone FROM clinic ORDER BY ItemOrder, ClinicNum"
OPERATORIES = "SELECT OperatoryNum, ClinicNum FROM operatory"
APPOINTMENT_TYPES = "SELECT AppointmentTypeNum, AppointmentTypeName FROM appointmenttype"
RECALL_TYPES = "SELECT RecallTypeNum, Description FROM recalltype"
OPT_OUTS = ("SELECT PatNum, OptOutSms, OptOutEmail FROM commoptout "
            "WHERE (OptOutSms | OptOutEmail) & 7 <> 0 ORDER BY PatNum")  # 1 All, 2 eConfirm, 4 eReminder

PROVIDERS = "SELECT ProvNum, Abbr, FName, LName, Suffix FROM provider"
#: Keys come as text (CAST ... AS CHAR), as the mirror keeps them: the driver decodes them in C.
PATIENTS = ("SELECT CAST(PatNum AS CHAR), IF(Preferred <> '', Preferred, FName), LName, PatStatus, WirelessPhone, "
            "HmPhone, WkPhone, Email, TxtMsgOk, PreferConfirmMethod, PreferContactMethod, Language, "
            "CAST(NULLIF(Guarantor, 0) AS CHAR) FROM patient")
#: 1 Scheduled, 2 Complete, 3 UnschedList, 4 ASAP, 5 Broken; 6 Planned, 7 PtNote, 8 PtNoteCompleted are
#: never on the schedule. The place is the ClinicNum, or minus the chair when 0 (the connector knows
#: the chairs' clinics); start and end come as local times in text, which repeat a lot, so the
#: connector works each out once per zone. An appointment ends 5 minutes per Pattern character after
#: its start (30 when empty), on the wall clock (DATETIME arithmetic knows no zones). The provider is
#: the hygienist of a hygiene appointment that has one.
_MINUTES = "IF(Pattern = '', 30, 5 * CHAR_LENGTH(Pattern))"
APPOINTMENTS = ("SELECT CAST(AptNum AS CHAR), CAST(PatNum AS CHAR), IF(ClinicNum <> 0, ClinicNum, -Op), "
                f"CAST(AptDateTime AS CHAR), CAST(AptDateTime + INTERVAL {_MINUTES} MINUTE AS CHAR), AptStatus, "
                "CAST(NULLIF(IF(IsHygiene <> 0 AND ProvHyg <> 0, ProvHyg, ProvNum), 0) AS CHAR), "
                "CAST(AppointmentTypeNum AS CHAR) FROM appointment WHERE AptStatus IN (1, 2, 3, 4, 5)")
RECALLS = ("SELECT CAST(RecallNum AS CHAR), CAST(PatNum AS CHAR), DateDue, DatePrevious, RecallInterval, IsDisabled, "
           "CAST(RecallTypeNum AS CHAR) FROM recall")

#: what APPOINTMENTS yields once rows without a date are skipped as they stream past (its count)
DATED_APPOINTMENTS = f"{APPOINTMENTS} AND AptDateTime >= {NO_DATE}"
#: appointments that left the schedule in a window: deleted (histappointment action 4; deletedobject
#: type 0 in versions before 21.1) or sent to the unscheduled list without a date
GONE = (f"SELECT AptNum FROM histappointment WHERE HistApptAction = 4 AND {WINDOW} "
        f"UNION SELECT ObjectNum FROM deletedobject WHERE ObjectType = 0 AND {WINDOW} "
        f"UNION SELECT AptNum FROM appointment WHERE AptStatus = 3 AND AptDateTime < {NO_DATE} AND {WINDOW}")


def where(sql: str, condition: str) -> str:
    return f"{sql} {'AND' if ' WHERE ' in sql else 'WHERE'} {condition}"


def count(sql: str) -> str:
    return f"SELECT COUNT(*) FROM ({sql}) AS streamed"
