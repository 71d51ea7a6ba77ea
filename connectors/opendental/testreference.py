"""The small tables of the Open Dental test database: clinics, providers, chairs, definitions, types.

Two clinics (one with a Windows-style TimeZone, as .NET stores it) plus the ClinicNum 0 rows of a
practice that used no clinics before; ApptConfirmed definitions in Open Dental's order with the
ApptEConfirmStatus* preferences pointing at them (reference/connectors.md §1.10 step 3).
"""

from __future__ import annotations

from vitalsync_connectors.opendental.interval import Interval

REFERENCE = {
    "clinic": (("ClinicNum", "Description", "Abbr", "Address", "City", "State", "Zip", "Phone", "ItemOrder",
                "IsConfirmEnabled", "TimeZone"), [
        (1, "Riverside Family Dental", "Riverside", "100 River Rd", "Portland", "OR", "97201", "5033635432", 0, 1, ""),
        (2, "Hillcrest Dental Chicago", "Hillcrest", "20 Hill St", "Chicago", "IL", "60601", "3125550142", 1, 1,
         "Central Standard Time"),
    ]),
    "provider": (("ProvNum", "Abbr", "ItemOrder", "LName", "FName", "Suffix", "IsSecondary", "IsHidden",
                  "ProvStatus", "NationalProvID"), [
        (1, "DOC1", 0, "Chen", "Maya", "DDS", 0, 0, 0, "1234567893"),
        (2, "DOC2", 1, "Ortiz", "Samuel", "DMD", 0, 0, 0, "1245319599"),
        (3, "HYG1", 2, "Nair", "Priya", "RDH", 1, 0, 0, ""),
        (4, "HYG2", 3, "Kim", "Laura", "RDH", 1, 0, 0, ""),
        (5, "DOC3", 4, "", "", "", 0, 1, 1, ""),  # deleted long ago; only its abbreviation is left
    ]),
    "operatory": (("OperatoryNum", "OpName", "Abbrev", "ItemOrder", "ProvDentist", "ProvHygienist", "IsHygiene",
                   "ClinicNum"), [
        (1, "Operatory 1", "Op1", 0, 1, 0, 0, 1), (2, "Hygiene 1", "Hyg1", 1, 1, 3, 1, 1),
        (3, "Operatory 3", "Op3", 2, 2, 0, 0, 2), (4, "Operatory 4", "Op4", 3, 1, 0, 0, 0),
        (5, "Hygiene 2", "Hyg2", 4, 2, 4, 1, 0),
    ]),
    "definition": (("DefNum", "Category", "ItemOrder", "ItemName", "ItemValue", "IsHidden"), [
        (1, 2, 0, "Not Called", "", 0), (2, 2, 1, "Unconfirmed", "Unconfrm", 0), (3, 2, 2, "Left Msg", "LeftMsg", 0),
        (4, 2, 3, "Appointment Confirmed", "Confirmed", 0), (5, 2, 4, "eConfirmSent", "eConfirmSent", 0),
        (6, 2, 5, "eConfirmCallBack", "eConfirmCallBack", 0), (7, 2, 6, "eConfirmFailure", "eConfirmFailure", 0),
        (8, 2, 7, "AppointmentConfirmed", "AppointmentConfirmed", 0), (9, 2, 8, "Arrived", "", 0),
        (10, 2, 9, "Texted", "", 0), (11, 13, 0, "Left Msg", "", 0), (12, 13, 1, "Call Back", "", 0),
        (13, 4, 0, "Standard Account", "", 0), (14, 4, 1, "Collections", "", 0),
    ]),
    "appointmenttype": (("AppointmentTypeNum", "AppointmentTypeName", "ItemOrder", "IsHidden", "Pattern"), [
        (1, "New Patient Exam", 0, 0, "//XXXXXX//"), (2, "Prophy", 1, 0, "/XXXXXX/"),
        (3, "Crown Prep", 2, 0, "//XXXXXXXXXX//"), (4, "Emergency", 3, 0, "/XXX/"), (5, "Old Exam", 4, 1, "XXXX"),
    ]),
    "recalltype": (("RecallTypeNum", "Description", "DefaultInterval", "TimePattern", "Procedures"), [
        (1, "Prophy", Interval(months=6).pack(), "/XXXX/", "D1110,D0120"),
        (2, "Child Prophy", Interval(months=6).pack(), "/XXX/", "D1120,D0120"),
        (3, "Perio", Interval(months=3).pack(), "/XXXXXX/", "D4910"),
        (4, "4BW", Interval(years=1).pack(), "", "D0274"),
        (5, "Pano", Interval(years=5).pack(), "", "D0330"),
    ]),
    "preference": (("PrefNum", "PrefName", "ValueString"), [
        (1, "DataBaseVersion", "24.2.45.0"), (2, "PracticeTitle", "Riverside Family Dental"),
        (3, "TextMsgOkStatusTreatAsNo", "0"), (4, "UpdateInProgressOnComputerName", ""),
        (5, "ApptEConfirmStatusSent", "5"), (6, "ApptEConfirmStatusAccepted", "8"),
        (7, "ApptEConfirmStatusDeclined", "6"), (8, "ApptEConfirmStatusSendFailed", "7"),
    ]),
}
