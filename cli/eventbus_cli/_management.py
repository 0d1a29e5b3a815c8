"""Listing what a vhost holds, through RabbitMQ's management HTTP API (AMQP cannot list).

``eventbus topology plan`` (what exists that nothing explains) and ``topology delete`` (every queue
of a service) need it; declaring and deleting still go over AMQP. The API is a plugin, installed
with RabbitMQ but off by default: ``rabbitmq-plugins enable rabbitmq_management``. Its address
is the AMQP URL's host on port 15672 with the same user, password and vhost, or
``EVENTBUS_MANAGEMENT_URL`` (``http://user:password@host:15672``).
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson

__all__ = ["Broker", "ManagementError", "management_for"]

MANAGEMENT_ENV = "EVENTBUS_MANAGEMENT_URL"
ENABLE_HINT = (
    "this command lists the broker through RabbitMQ's management HTTP API: enable the plugin with "
    "'rabbitmq-plugins enable rabbitmq_management' (or set EVENTBUS_MANAGEMENT_URL to where it listens)"
)


class ManagementError(Exception):
    """The management API cannot answer; the message says what to do."""


@dataclass(frozen=True)
class Broker:
    """The management API of one vhost, read-only."""

    base: str
    vhost: str
    user: str
    password: str

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise ManagementError(f"the management API at {self.base} refused user {self.user!r}: "
                                      "check the password (and that the user has the 'management' tag)") from None
            if exc.code == 404:
                raise ManagementError(f"vhost {self.vhost!r} does not exist on {self.base}") from None
            raise ManagementError(f"the management API at {self.base} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ManagementError(f"no management API at {self.base} ({exc}): {ENABLE_HINT}") from None

    def _list(self, kind: str) -> list[dict[str, Any]]:
        return list(self._get(f"/api/{kind}/{quote(self.vhost, safe='')}"))

    def queues(self) -> dict[str, dict[str, Any]]:
        """Queue name → its record (``messages``, ``consumers``, ``arguments``, ``durable``…)."""
        return {queue["name"]: queue for queue in self._list("queues")}

    def exchanges(self) -> dict[str, dict[str, Any]]:
        """Exchange name → its record; the default exchange and ``amq.*`` left out."""
        return {e["name"]: e for e in self._list("exchanges") if e["name"] and not e["name"].startswith("amq.")}

    def bindings(self) -> list[tuple[str, str, str, str]]:
        """(source, destination type, destination, routing key) of every binding but the default exchange's."""
        return [(b["source"], b["destination_type"], b["destination"], b["routing_key"])
                for b in self._list("bindings") if b["source"]]


def management_for(amqp_url: str) -> Broker:
    """The management API beside the broker of ``amqp_url`` (or at ``EVENTBUS_MANAGEMENT_URL``)."""
    amqp = urlsplit(amqp_url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    user, password = unquote(amqp.username or "guest"), unquote(amqp.password or "guest")
    configured = os.environ.get(MANAGEMENT_ENV)
    if configured:
        parts = urlsplit(configured)
        user, password = unquote(parts.username or user), unquote(parts.password or password)
        base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
    else:
        scheme = "https" if amqp.scheme == "amqps" else "http"
        base = f"{scheme}://{amqp.hostname or '127.0.0.1'}:15672"
    return Broker(base, vhost, user, password)
