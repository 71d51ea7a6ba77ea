"""Peak memory of a console + webhook server under the hardening issue's two attacks (issue 12, points 5 and 7).

Starts a server process like the daemon's (the console and the webhook receiver, each on uvicorn in
a thread, over a fresh SQLite database with one staff account), then per scenario, each in a fresh
server process, reads its resident size before and its peak (VmHWM) after:

- ``logins``: 20 concurrent wrong passwords for one account (argon2 checks);
- ``console_post``: an anonymous 100 MB chunked POST to /login;
- ``webhook_post``: an unsigned 100 MB chunked POST to /webhooks/sendgrid/events.

    .venv/bin/python bench/console/attack.py                       # this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/console/attack.py   # another one's code

2026-12-04, 2-core shared machine (peak MB; the server idles at ~103 MB):
    before (de1e12f): logins 956 (20 x 401, not locked), console_post 368, webhook_post 303
    after (hardening): logins 234 (4 x 401, 16 x 403 locked), console_post 163 (413), webhook_post 163 (413)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

PASSWORD = "benchmark password"
MB = 1024 * 1024


def child(home: Path) -> None:
    """The server: prints its ports as one JSON line, then serves until killed."""
    from vitalsync.app.console_server import start_console
    from vitalsync.app.runtime import open_database
    from vitalsync.console import accounts
    from vitalsync.core.clock import SystemClock
    from vitalsync.core.config import load_config
    from vitalsync.status.webhooks import serve, webhook_app

    config = load_config(home / "config.toml")
    engine = open_database(config)
    accounts.add_user(engine, "maria", "front_desk", PASSWORD, SystemClock().now())
    console = start_console(config, engine, SystemClock())
    hooks = serve(webhook_app(engine, config, SystemClock(), twilio_auth_token="t" * 32,
                              sendgrid_public_key="not-a-key", public_url="http://127.0.0.1"), "127.0.0.1", 0)
    print(json.dumps({"console": console.port, "webhooks": hooks.port}), flush=True)
    threading.Event().wait()


def memory(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) // 1024 for key in ("VmRSS", "VmHWM")}


def chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size


def logins(ports: dict) -> str:
    base = f"http://127.0.0.1:{ports['console']}"

    def attempt(results: list) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            page = client.get("/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            results.append(client.post("/login", data={"csrf": token, "name": "maria", "password": "wrong password!"}).status_code)

    results: list = []
    threads = [threading.Thread(target=attempt, args=(results,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return " ".join(str(code) for code in sorted(results))


def big_post(ports: dict, which: str, path: str) -> str:
    try:
        response = httpx.post(f"http://127.0.0.1:{ports[which]}{path}", content=chunks(100 * MB), timeout=120,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        return str(response.status_code)
    except httpx.HTTPError as exc:  # the server may answer and close while the body is still going out
        return type(exc).__name__


SCENARIOS = {"logins": logins,
             "console_post": lambda ports: big_post(ports, "console", "/login"),
             "webhook_post": lambda ports: big_post(ports, "webhooks", "/webhooks/sendgrid/events")}


def main() -> None:
    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            (home / "console.key").write_text("k" * 64)
            (home / "console.key").chmod(0o600)
            (home / "config.toml").write_text('[database]\nurl = "sqlite:///vs.db"\n[console]\nenabled = true\n'
                                              'listen = "127.0.0.1:0"\nsecret_key_file = "console.key"\nsecure_cookies = false\n')
            server = subprocess.Popen([sys.executable, __file__, "--child", str(home)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=os.environ.copy())
            try:
                ports = json.loads(server.stdout.readline())
                time.sleep(0.5)
                before = memory(server.pid)
                started = time.monotonic()
                outcome = scenario(ports)
                seconds = time.monotonic() - started
                after = memory(server.pid)
            finally:
                server.kill()
                _, stderr = server.communicate()
            print(f"{name:13s} rss before {before['VmRSS']:5d} MB  peak {after['VmHWM']:5d} MB  {seconds:5.1f} s  "
                  f"answers: {outcome}  stderr lines: {len(stderr.decode().splitlines())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]))
    else:
        main()
