"""A real 3-node RabbitMQ cluster on this machine, beside (never touching) the shared broker on 5672.

Nodes ``ebc1@localhost`` … run from the installed RabbitMQ under their own names, AMQP ports
(5701…), distribution ports (25701…), data and log directories (one folder under the temp
dir) and their own Erlang cookie, passed with ``-setcookie`` to the nodes and the CLI, so the
shared broker's cookie and node are never used. Each node is kept light for a 2-core machine:
no plugins, one scheduler (``+S 1:1``), no busy-waiting schedulers. A restart of the cluster
(``stop``, then ``start``) is needed for a change of these settings to take effect.

``Cluster.start()`` is idempotent: a healthy running cluster is reused, anything else (a node
down, not clustered, a leftover of a killed run) is stopped and made afresh. For manual use::

    python -m tests.cluster.cluster start     # prints EVENTBUS_URL=amqp://…:5701,…:5702,…:5703
    python -m tests.cluster.cluster status
    python -m tests.cluster.cluster stop

``EVENTBUS_CLUSTER_PORT`` moves the ports (base + 1 … base + size; distribution ports + 20000).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cluster", "Node"]

# Light on a 2-core machine; a dead-letter hop whose confirm was lost with a node is sent again
# after 5 s instead of RabbitMQ's default 3 min (docs/scaling.md).
_LIGHT = "+S 1:1 -kernel inet_dist_use_interface {127,0,0,1} -rabbit dead_letter_worker_publisher_confirm_timeout 5000"


@dataclass(frozen=True)
class Node:
    index: int
    name: str
    port: int
    dist_port: int

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"


class Cluster:
    """``size`` nodes named ``<prefix><n>@localhost``; ``kill``/``restart`` one for fault tests."""

    def __init__(self, size: int = 3, *, prefix: str = "ebc", base_port: int | None = None) -> None:
        base = base_port or int(os.environ.get("EVENTBUS_CLUSTER_PORT", "5700"))
        self.size = size
        self.prefix = prefix
        self.root = Path(tempfile.gettempdir()) / f"eventbus-cluster-{prefix}-{base}"
        self.nodes = [Node(i, f"{prefix}{i}@localhost", base + i, base + 20000 + i) for i in range(1, size + 1)]
        self.started_here = False

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def cookie(self) -> str:
        path = self.root / "cookie"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(f"EVENTBUSCLUSTER{os.urandom(8).hex().upper()}")
        return path.read_text().strip()

    def _dir(self, node: Node) -> Path:
        return self.root / node.name.split("@")[0]

    def _env(self, node: Node) -> dict[str, str]:
        home = self._dir(node)
        return {
            **os.environ,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_PID_FILE": str(home / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_SCHEDULER_BUSY_WAIT_THRESHOLD": "none",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-setcookie {self.cookie} {_LIGHT}",
            "RABBITMQ_CTL_ERL_ARGS": f"-setcookie {self.cookie}",
        }

    def ctl(self, node: Node, *args: str, timeout: float = 60, tool: str = "rabbitmqctl") -> str:
        result = subprocess.run(
            [tool, "-n", node.name, "--erlang-cookie", self.cookie, *args],
            capture_output=True, text=True, timeout=timeout, env=self._env(node),
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} -n {node.name} {' '.join(args)}: {result.stderr.strip() or result.stdout}")
        return result.stdout

    def _port_open(self, node: Node) -> bool:
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
            return True
        except OSError:
            return False

    def pid(self, node: Node) -> int | None:
        try:
            pid = int((self._dir(node) / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    # -- health --------------------------------------------------------------------------------------

    def running_nodes(self, via: Node | None = None) -> set[str]:
        """The nodes ``via`` (default: any that answers) sees running in its cluster."""
        for node in [via] if via else self.nodes:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                status = json.loads(self.ctl(node, "cluster_status", "--formatter", "json", timeout=30))
                return set(status.get("running_nodes", []))
        return set()

    def healthy(self) -> bool:
        if not all(self._port_open(node) for node in self.nodes):
            return False
        return self.running_nodes() == {node.name for node in self.nodes}

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Reuse a healthy cluster, or stop whatever is left and form a new one."""
        if self.root.exists() and self.healthy():
            return
        self.stop()
        self.started_here = True
        assert self.cookie  # a new one for the new cluster
        for node in self.nodes:
            home = self._dir(node)
            for sub in ("mnesia", "log"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            (home / "enabled_plugins").write_text("[].\n")
            (home / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{node.port}\nloopback_users = none\n"
                "vm_memory_high_watermark.relative = 0.1\nlog.console = false\nlog.file.level = warning\n"
            )
            (home / "rabbitmq-env.conf").write_text("")
        if os.geteuid() == 0:  # the packaged scripts run the node as the rabbitmq user
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, "rabbitmq", "rabbitmq")
            os.chmod(self.root / "cookie", 0o400)
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(self._boot, self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name, timeout=120)
            self.ctl(node, "start_app", timeout=120)
        self._await(lambda: self.healthy(), 120, "the cluster to form")

    def _boot(self, node: Node) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self._env(node), check=True, capture_output=True,
                       timeout=60)
        self.await_node(node)

    def await_node(self, node: Node, timeout: float = 120) -> None:
        def up() -> bool:
            try:
                self.ctl(node, "await_startup", "--timeout", "20", timeout=40)
            except (RuntimeError, subprocess.TimeoutExpired):
                return False
            return self._port_open(node)

        self._await(up, timeout, f"{node.name} to start")

    @staticmethod
    def _await(predicate: object, timeout: float, what: str) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def kill(self, node: Node) -> None:
        """SIGKILL the node's Erlang VM: no clean shutdown, as when a machine dies."""
        pid = self.pid(node)
        if pid is None:
            raise RuntimeError(f"{node.name} is not running")
        os.kill(pid, signal.SIGKILL)
        self._await(lambda: not self._port_open(node) and self.pid(node) is None, 30, f"{node.name} to die")

    def restart(self, node: Node) -> None:
        """Boot a killed node again on its data directory; it rejoins the cluster by itself."""
        self._boot(node)

    def leader(self, queue: str, vhost: str = "/") -> Node:
        """The node that leads quorum queue ``queue`` now."""
        for node in self.nodes:
            if self.pid(node) is None:
                continue
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                rows = json.loads(self.ctl(node, "list_queues", "-p", vhost, "name", "leader", "--formatter", "json"))
                for row in rows:
                    if row["name"] == queue:
                        return self.by_name(str(row["leader"]))
                raise KeyError(queue)
        raise RuntimeError("no node answers")

    def by_name(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def add_vhost(self, vhost: str) -> None:
        node = self.live_node()
        self.ctl(node, "add_vhost", vhost)
        self.ctl(node, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl(self.live_node(), "delete_vhost", vhost, timeout=120)

    def live_node(self) -> Node:
        return next(node for node in self.nodes if self.pid(node) is not None and self._port_open(node))

    def urls_for(self, vhost: str) -> list[str]:
        from urllib.parse import quote

        return [node.url.rsplit("/", 1)[0] + "/" + quote(vhost, safe="") for node in self.nodes]

    def stop(self) -> None:
        """Stop every node of this cluster (cleanly, else SIGKILL) and delete its folder."""
        for node in self.nodes:
            if self.pid(node) is not None or self._port_open(node):
                try:
                    self.ctl(node, "stop", timeout=60)
                except (RuntimeError, subprocess.TimeoutExpired):
                    pid = self.pid(node)
                    if pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--size", type=int, default=3)
    args = parser.parse_args()
    cluster = Cluster(args.size)
    if args.command == "start":
        cluster.start()
        print("EVENTBUS_URL=" + ",".join(cluster.urls))
    elif args.command == "stop":
        cluster.stop()
    else:
        print(json.dumps({"healthy": cluster.healthy(), "running": sorted(cluster.running_nodes())}))


if __name__ == "__main__":
    main()
