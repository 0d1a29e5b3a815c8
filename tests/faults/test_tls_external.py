"""SASL EXTERNAL over TLS on a disposable node: the client certificate is the identity.

The node gets a TLS listener that requires a client certificate signed by a throw-away CA
(made here with ``openssl``), the ``rabbitmq_auth_mechanism_ssl`` plugin, and a user named
after the client certificate's common name. The SDK connects with
``amqps://…?auth_mechanism=external&cafile=…&certfile=…&keyfile=…`` and never sends a password.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventbus import BusSettings, EventBus
from eventbus.transports._amqp import ChannelClosedError, ConnectionClosedError, Properties, connect

from ._broker import FaultBroker, _free_port
from ._events import CONTRACT, event, until

CLIENT = "eventbus-client"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_pki(where: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate with CN=eventbus-client."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=eventbus-test-ca", cwd=where)
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, extension in (("server", "/CN=localhost", ["-extfile", "san.ext"]),
                                     ("client", f"/CN={CLIENT}", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=where)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", *extension, cwd=where)


class TlsBroker(FaultBroker):
    """A ``FaultBroker`` whose config adds a TLS listener with client certificates and EXTERNAL login."""

    def __init__(self) -> None:
        super().__init__()
        self.node = f"eventbus-faults-tls-{os.getpid()}@localhost"
        self.tls_port = _free_port()
        self.pki = Path(tempfile.mkdtemp(prefix="eventbus-tls-"))
        _make_pki(self.pki)
        (self.pki / "enabled_plugins").write_text("[rabbitmq_auth_mechanism_ssl].\n")
        (self.pki / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            f"listeners.ssl.local = 127.0.0.1:{self.tls_port}\n"
            "loopback_users = none\n"
            f"ssl_options.cacertfile = {self.pki / 'ca.pem'}\n"
            f"ssl_options.certfile = {self.pki / 'server.pem'}\n"
            f"ssl_options.keyfile = {self.pki / 'server.key'}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
            "auth_mechanisms.1 = PLAIN\n"
            "auth_mechanisms.2 = EXTERNAL\n"
            "ssl_cert_login_from = common_name\n"
        )
        if os.geteuid() == 0:  # the packaged scripts run the node as the rabbitmq user
            for path in [self.pki, *self.pki.iterdir()]:
                shutil.chown(path, "rabbitmq", "rabbitmq")

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "RABBITMQ_CONFIG_FILE": str(self.pki / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.pki / "enabled_plugins")}

    def tls_url(self, query: str) -> str:
        return f"amqps://127.0.0.1:{self.tls_port}/%2F?{query}"

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            shutil.rmtree(self.pki, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[TlsBroker]:
    if shutil.which("rabbitmq-server") is None or shutil.which("openssl") is None:
        pytest.skip("needs RabbitMQ and openssl installed")
    broker = TlsBroker()
    try:
        broker.start()
        broker.ctl("add_user", CLIENT, "a-password-never-sent")
        broker.ctl("set_permissions", "-p", "/", CLIENT, ".*", ".*", ".*")
        yield broker
    finally:
        broker.stop()


def _files(broker: TlsBroker, cert: bool = True) -> str:
    query = f"cafile={broker.pki / 'ca.pem'}"
    if cert:
        query += f"&certfile={broker.pki / 'client.pem'}&keyfile={broker.pki / 'client.key'}"
    return query


async def test_external_login_takes_the_identity_from_the_client_certificate(tls_broker: TlsBroker) -> None:
    connection = await asyncio.wait_for(
        connect(tls_broker.tls_url(f"auth_mechanism=external&{_files(tls_broker)}"), name="tls-external"), 30)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = (await channel.queue_declare("", durable=False, exclusive=True)).queue or ""
        # RabbitMQ checks user_id against the authenticated user: the certificate's CN passes ...
        mine = channel.publish([("", queue, Properties(user_id=CLIENT), b"{}")])
        await asyncio.wait_for(mine.done, 10)
        assert mine.results == [None]
        # ... and any other name is refused, so the broker really took CN=eventbus-client as the user
        other = channel.publish([("", queue, Properties(user_id="guest"), b"{}")])
        await asyncio.wait_for(other.done, 10)
        assert isinstance(other.results[0], ChannelClosedError) and other.results[0].code == 406
    finally:
        await connection.close()


async def test_a_bus_runs_on_external_login(tls_broker: TlsBroker, service: str) -> None:
    settings = BusSettings(service=service, urls=(tls_broker.tls_url(f"auth_mechanism=external&{_files(tls_broker)}"),),
                           confirm_timeout=10.0)
    handled: list[str] = []
    bus = EventBus(settings)
    bus.subscribe(CONTRACT.model)(lambda e, ctx: handled.append(ctx.id))
    try:
        await bus.start()
        event_id = await bus.publish(event("conv_over_tls"))
        await until(lambda: event_id in handled, timeout=30, what="the event over TLS")
    finally:
        await bus.close()


async def test_without_a_client_certificate_the_broker_refuses_the_connection(tls_broker: TlsBroker) -> None:
    failure: Any = None
    try:
        connection = await asyncio.wait_for(
            connect(tls_broker.tls_url(f"auth_mechanism=external&{_files(tls_broker, cert=False)}")), 30)
        await connection.close()
    except (ConnectionClosedError, OSError, TimeoutError) as exc:  # the TLS handshake or the login fails
        failure = exc
    assert failure is not None
