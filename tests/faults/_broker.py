"""A disposable RabbitMQ node for fault tests, so breaking it never disturbs the shared broker on 5672.

It runs under its own node name, ports, data and log directories and an empty plugin list,
from the same RabbitMQ installation, and is stopped at the end of the session. Booting takes
about 5 s on the CI machine.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["FaultBroker"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FaultBroker:
    """``start()``, break it with the methods below, ``stop()``; ``url`` points at its AMQP port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dist_port = _free_port()
        self.node = f"eventbus-faults-{os.getpid()}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.root = Path(tempfile.mkdtemp(prefix="eventbus-faults-"))
        self.boot_seconds = 0.0

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(["rabbitmqctl", "-n", self.node, *args], capture_output=True, text=True,
                                timeout=timeout, env=self._env())
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip() or result.stdout}")
        return result.stdout

    @staticmethod
    def stop_orphans() -> list[str]:
        """Stop nodes of earlier runs whose pytest process is gone (a run killed before its teardown)."""
        result = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=30)
        stopped = []
        for match in re.finditer(r"^name eventbus-faults-(\d+) at port", result.stdout, re.MULTILINE):
            pid = int(match[1])
            if pid == os.getpid() or Path(f"/proc/{pid}").exists():
                continue
            node = f"eventbus-faults-{pid}@localhost"
            subprocess.run(["rabbitmqctl", "-n", node, "stop"], capture_output=True, timeout=120)
            stopped.append(node)
        return stopped

    def start(self) -> None:
        for directory in ("mnesia", "log"):
            (self.root / directory).mkdir(parents=True)
        (self.root / "enabled_plugins").write_text("[].\n")
        # The system config pins the listener to 5672; this node gets its own file.
        config = f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        (self.root / "rabbitmq.conf").write_text(config)
        (self.root / "rabbitmq-env.conf").write_text("")
        if os.geteuid() == 0:  # the packaged scripts switch to the rabbitmq user
            shutil.chown(self.root, "rabbitmq", "rabbitmq")
            for path in self.root.rglob("*"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        started = time.monotonic()
        subprocess.run(["rabbitmq-server", "-detached"], env=self._env(), check=True, capture_output=True, timeout=60)
        self.await_startup()
        self.boot_seconds = time.monotonic() - started

    def await_startup(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30")
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        deadline = time.monotonic() + 30
        while True:  # the port opens a moment after the app reports running
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close_all_connections(self) -> None:
        self.ctl("close_all_connections", "eventbus fault test")

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.await_startup()

    def block_publishers(self) -> None:
        """Trigger a memory alarm: RabbitMQ blocks every connection that publishes."""
        self.ctl("set_vm_memory_high_watermark", "0.0000001")

    def unblock_publishers(self) -> None:
        self.ctl("set_vm_memory_high_watermark", "0.4")

    def stop(self) -> None:
        try:
            self.ctl("stop", timeout=120)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
