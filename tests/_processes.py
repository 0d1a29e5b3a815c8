"""Run ``eventbus worker`` as a real process and watch what it does (for CLI and fault tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A service module the tests run under the worker. Every handled event id is written to
# HANDLED_FILE with os.write *before* the handler returns (and so before the ack): an id
# that is acked is always in the file, even if the process is SIGKILLed right after.
APP_SOURCE = '''
import asyncio, os, time
from eventbus import EventBus, RetryPolicy, SyncEventBus
from eventbus_contracts import ConversationEndedV1

SERVICE = os.environ["APP_SERVICE"]
URL = os.environ.get("APP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
HANDLED = os.open(os.environ["APP_HANDLED_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
STARTED = os.open(os.environ["APP_STARTED_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
SLEEP = float(os.environ.get("APP_SLEEP", "0"))
CRASH_ON = os.environ.get("APP_CRASH_ON", "")
LIMIT = int(os.environ.get("APP_DELIVERY_LIMIT", "20"))

bus = EventBus.from_env(SERVICE, urls=(URL,), delivery_limit=LIMIT, retry=RetryPolicy.never())


@bus.subscribe(ConversationEndedV1)
async def handle(event, ctx):
    os.write(STARTED, (ctx.id + "\\n").encode())
    if CRASH_ON and event.conversation_id == CRASH_ON:
        os._exit(17)  # a poison message that kills the process every time
    if SLEEP:
        await asyncio.sleep(SLEEP)
    os.write(HANDLED, (ctx.id + "\\n").encode())


def make_sync_bus():
    sync = SyncEventBus.from_env(SERVICE, urls=(URL,), delivery_limit=LIMIT)

    @sync.subscribe(ConversationEndedV1)
    def handle_sync(event, ctx):
        os.write(STARTED, (ctx.id + "\\n").encode())
        time.sleep(SLEEP)
        os.write(HANDLED, (ctx.id + "\\n").encode())

    return sync
'''


def read_ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


class Worker:
    """``eventbus worker app:ATTR`` in ``workdir``, its stderr collected line by line."""

    def __init__(self, workdir: Path, target: str = "app:bus", *args: str, env: dict[str, str]) -> None:
        (workdir / "app.py").write_text(APP_SOURCE)
        self.handled = workdir / "handled.txt"
        self.started = workdir / "started.txt"
        full_env = {**os.environ, "APP_HANDLED_FILE": str(self.handled), "APP_STARTED_FILE": str(self.started),
                    "PYTHONPATH": os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]), **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventbus_cli", "worker", target, *args],
            cwd=workdir, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None and not condition():
                raise AssertionError(f"worker exited ({self.process.returncode}) before {what}:\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.log}")
            time.sleep(0.02)

    def wait_started(self, timeout: float = 30.0) -> None:
        self.wait_for(lambda: any("worker started" in line for line in self.lines), timeout, "the worker to start")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
