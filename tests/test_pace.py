"""Per-sender rate limits: on a clock the test drives, no two units ever go closer than 1/rate apart,
also when many threads share one sender; and the real senders wait for their pacer before they post."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.providers import ALWAYS_OPEN, provider_settings
from vitalsync.app.senders import build_senders
from vitalsync.core.clock import SystemClock
from vitalsync.core.config import load_config
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.pace import Pacer
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.twilio_sms import TwilioSms


class FakeTime:
    """A monotonic clock that moves only when someone sleeps (sleep moves it to the sleeper's wake-up)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def read(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def gaps(times: list[float]) -> list[float]:
    times = sorted(times)
    return [b - a for a, b in zip(times, times[1:])]


def test_units_are_spaced_by_one_over_the_rate():
    clock = FakeTime()
    pacer = Pacer(4, now=clock.read, sleep=clock.sleep)
    sent = []
    for _ in range(20):
        pacer.wait()
        sent.append(clock.read())
    assert min(gaps(sent)) == pytest.approx(0.25)
    # 20 sends at 4/s take 19 intervals after the first, which goes at once
    assert sent[-1] - sent[0] == pytest.approx(19 / 4)


def test_a_sender_idle_for_a_while_gets_no_burst_of_saved_up_slots():
    clock = FakeTime()
    pacer = Pacer(2, now=clock.read, sleep=clock.sleep)
    pacer.wait()
    clock.sleep(60)
    sent = []
    for _ in range(3):
        pacer.wait()
        sent.append(clock.read())
    assert gaps(sent) == [pytest.approx(0.5)] * 2


def test_a_message_of_several_segments_takes_as_many_slots():
    clock = FakeTime()
    pacer = Pacer(1, now=clock.read, sleep=clock.sleep)
    pacer.wait(3)
    first = clock.read()
    pacer.wait(1)
    assert clock.read() - first == pytest.approx(3)


def test_threads_sharing_one_pacer_never_get_the_same_slot():
    """Each thread's slot is where its sleep ends; the clock stands still, so only the lock spaces them."""
    start, slots, lock = 50.0, [], threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slots.append(start + seconds)

    pacer = Pacer(100, now=lambda: start, sleep=sleep)
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(50):
            pacer.wait()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 400 waits: the first goes at once (no sleep), the other 399 each sleep to a slot of their own
    assert len(slots) == 399
    assert min(gaps([start, *slots])) == pytest.approx(0.01)


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        Pacer(0)


def test_the_twilio_sender_waits_for_its_number_s_rate_before_each_post():
    """Through the real client to the fake: 10 texts at 20/s cannot all be at Twilio before 9/20 s."""
    rate = 20.0
    with FakeTwilio() as twilio:
        sms = TwilioSms(twilio.account_sid, twilio.auth_token, from_number="+15005550006",
                        base_url=twilio.base_url, timeout=5, pacer=Pacer(rate))
        started = time.monotonic()
        for i in range(10):
            sms.send(Outgoing(message_id=i, key=f"k{i}", channel="sms", to="+15551230000", body="See you at 9."))
        elapsed = time.monotonic() - started
        assert len(twilio.messages) == 10
    assert elapsed >= 9 / rate


def test_the_config_sets_each_sender_s_rate(tmp_path: Path):
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid:
        text = provider_settings(tmp_path, twilio, sendgrid) + ALWAYS_OPEN
        text = text.replace("messages_per_second = 10000\ncalls_per_second = 10000",
                            "messages_per_second = 3\ncalls_per_second = 0.5", 1)
        text = text.replace("messages_per_second = 10000", "messages_per_second = 25", 1)
        (tmp_path / "config.toml").write_text(text)
        senders = build_senders(load_config(tmp_path / "config.toml"), SystemClock(), None)
    assert senders["sms"].pacer.rate == 3
    assert senders["voice"].pacer.rate == 0.5
    assert senders["email"].pacer.rate == 25
