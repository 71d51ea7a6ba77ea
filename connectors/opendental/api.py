"""Write-back through Open Dental's REST API: appointment confirmations, never SQL.

A direct write to ``appointment.Confirmed`` would break the row's SecurityHash and make Open Dental
warn about database integrity; ``PUT /appointments/{AptNum}/Confirm`` is the supported way
(reference/connectors.md §1.8–1.9). Off unless ``connector.write_back`` is set.
"""

from __future__ import annotations

import httpx

from vitalsync.core.errors import PersonMustAct, RetryLater

#: the only values the API accepts besides a defNum (Open Dental forum, "Appointments PUT Confirm")
CONFIRM_VALUES = ("None", "Sent", "Confirmed", "Not Accepted", "Failed")


class ConfirmApi:
    def __init__(self, base_url: str, key: str, *, timeout: float = 15.0, transport: httpx.BaseTransport | None = None):
        self.client = httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport,
                                   headers={"Authorization": f"ODFHIR {key}"})

    def confirm(self, apt_num: int | str, value: str = "Confirmed", *, def_num: int | None = None) -> None:
        """Set the appointment's confirmation: one of CONFIRM_VALUES, or any ApptConfirmed ``def_num``."""
        if def_num is None and value not in CONFIRM_VALUES:
            raise ValueError(f"confirmVal must be one of {', '.join(CONFIRM_VALUES)}")
        body = {"defNum": def_num} if def_num is not None else {"confirmVal": value}
        try:
            response = self.client.put(f"appointments/{int(apt_num)}/Confirm", json=body)
        except httpx.TransportError as exc:
            raise RetryLater(f"the Open Dental API at {self.client.base_url} is not reachable: "
                             f"{type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise PersonMustAct("the Open Dental API refused the key: check the secret 'opendental_api_key' "
                                "(ODFHIR developer-key/customer-key) and that the office enabled the API")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"the Open Dental API answered HTTP {response.status_code}; trying again later")
        if response.status_code >= 400:
            raise PersonMustAct(f"the Open Dental API refused to confirm appointment {int(apt_num)}: "
                                f"HTTP {response.status_code} {response.text[:200]}")

    def close(self) -> None:
        self.client.close()
