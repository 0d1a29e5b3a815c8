"""A private RabbitMQ vhost per test, made and removed through the management HTTP API.

Topology tests list a whole vhost, so they need one nobody else writes to. The management plugin is
enabled by .ci/run (``rabbitmq-plugins enable rabbitmq_management``); without it these tests skip.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

API = "http://127.0.0.1:15672/api"
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def _call(method: str, path: str, body: bytes | None = None) -> None:
    request = urllib.request.Request(API + path, data=body, method=method)
    request.add_header("Authorization", _AUTH)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextlib.contextmanager
def private_vhost(prefix: str = "test") -> Iterator[str]:
    """A fresh vhost guest may use; its AMQP URL is ``amqp://guest:guest@127.0.0.1:5672/<name>``."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        _call("PUT", f"/vhosts/{quote(name, safe='')}")
    except (urllib.error.URLError, OSError) as exc:
        pytest.skip(f"needs RabbitMQ's management API on :15672 (rabbitmq-plugins enable rabbitmq_management): {exc}")
    try:
        _call("PUT", f"/permissions/{quote(name, safe='')}/guest", b'{"configure":".*","write":".*","read":".*"}')
        yield name
    finally:
        _call("DELETE", f"/vhosts/{quote(name, safe='')}")


def amqp_url(vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"


def vhost_queues(vhost: str) -> list[str]:
    """The names of the queues in ``vhost``, sorted (``rabbitmqctl``: no management API needed)."""
    out = subprocess.run(["rabbitmqctl", "list_queues", "-p", vhost, "-q", "--no-table-headers", "name"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())
