"""Sends through the real twilio client against a plain httpx POST loop, both to one fake Twilio
served by its own process on loopback; and the send rate a configured rate limit gives."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

BODY = "Main Street Dental: reminder of your visit Tue Mar 3 at 9:00 AM. Reply C to confirm, N to decline, R to reschedule."
TO, FROM = "+15551230000", "+15005550006"


def serve_fake_twilio() -> None:
    """The fake in this process: print where it listens, serve until stdin closes."""
    from vitalsync.dispatch.fake_twilio import FakeTwilio
    with FakeTwilio() as twilio:
        print(twilio.base_url, twilio.account_sid, twilio.auth_token, flush=True)
        sys.stdin.read()


class FakeTwilioProcess:
    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.base_url, self.account_sid, self.auth_token = self.process.stdout.readline().split()
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.stdin.close()
        self.process.wait(10)


def product_loop(sms, count: int) -> float:
    from vitalsync.dispatch.sender import Outgoing
    outgoing = [Outgoing(message_id=i, key=f"k{i}", channel="sms", to=TO, body=BODY) for i in range(count)]
    started = time.perf_counter()
    for one in outgoing:
        sms.send(one)
    return count / (time.perf_counter() - started)


def ceiling_loop(client, url: str, count: int) -> float:
    """What any client must do at least: POST the same form with basic auth and read the SID."""
    started = time.perf_counter()
    for _ in range(count):
        response = client.post(url, data={"To": TO, "From": FROM, "Body": BODY})
        response.raise_for_status()
        response.json()["sid"]
    return count / (time.perf_counter() - started)


def sends(count: int, rounds: int) -> dict:
    import httpx

    from vitalsync.dispatch.twilio_sms import TwilioSms
    with FakeTwilioProcess() as fake:
        sms = TwilioSms(fake.account_sid, fake.auth_token, from_number=FROM, base_url=fake.base_url, timeout=10)
        url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
        with httpx.Client(auth=(fake.account_sid, fake.auth_token), timeout=10) as client:
            product_loop(sms, 100), ceiling_loop(client, url, 100)  # warm both connections up
            product, ceiling = [], []
            for _ in range(rounds):  # interleaved, so a noisy neighbour hurts both alike
                product.append(product_loop(sms, count))
                ceiling.append(ceiling_loop(client, url, count))
    return {"twilio_client_per_s": statistics.median(product), "httpx_per_s": statistics.median(ceiling),
            "ratio": statistics.median(p / c for p, c in zip(product, ceiling)),  # per round: each pair shared its noise
            "rounds": {"twilio_client": product, "httpx": ceiling}, "count": count}


def rate_limit(rate: float, count: int) -> dict:
    """Send ``count`` texts through a sender limited to ``rate`` per second; the rate measured as sends return."""
    from vitalsync.dispatch.pace import Pacer
    from vitalsync.dispatch.sender import Outgoing
    from vitalsync.dispatch.twilio_sms import TwilioSms
    with FakeTwilioProcess() as fake:
        sms = TwilioSms(fake.account_sid, fake.auth_token, from_number=FROM, base_url=fake.base_url, timeout=10,
                        pacer=Pacer(rate))
        returned = []
        for i in range(count):
            sms.send(Outgoing(message_id=i, key=f"k{i}", channel="sms", to=TO, body=BODY))
            returned.append(time.perf_counter())
    gaps = [b - a for a, b in zip(returned, returned[1:])]
    # count - 1 intervals between the first and the last send
    measured = (count - 1) / (returned[-1] - returned[0])
    busiest = max(sum(1 for t in returned if start <= t < start + 1.0) for start in returned)
    return {"configured_per_s": rate, "measured_per_s": measured, "count": count,
            "most_in_any_second": busiest, "smallest_gap_s": min(gaps)}


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve_fake_twilio()
