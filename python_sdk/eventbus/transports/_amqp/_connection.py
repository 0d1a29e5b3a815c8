"""An AMQP 0-9-1 connection as an ``asyncio.Protocol``: handshake, heartbeats, channels, close.

Bytes from the socket go straight through ``FrameParser`` to the channel they belong to, inside
``data_received``. Writes are gathered for the rest of the event-loop iteration and handed to
the transport in one piece (``_flush``, scheduled with ``call_soon``): a hundred publishes or
acks made by a hundred handlers in one iteration cost one ``send`` system call, not a hundred,
for a delay of one iteration. There is no reader task, no writer task and no frame queue
between the socket and the SDK, which is where aiormq spends most of its time per message.
What the broker says about the connection as a whole (blocked by an alarm, closing with a
reason, heartbeats) is handled here; the rest is the channel's business.

Login is SASL PLAIN (user and password from the URL) or EXTERNAL (``?auth_mechanism=external``:
the broker takes the identity from the TLS client certificate); ``update_secret`` hands a live
connection a new password or token (``connection.update-secret``, e.g. an OAuth 2 token about
to expire) without reconnecting. While the broker blocks the connection (``connection.blocked``)
its channels hold or refuse publishes as ``when_blocked`` says (see ``_channel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import ssl
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pamqp import commands as spec
from pamqp.base import Frame as MethodFrame

from ._channel import Channel
from ._codec import HEARTBEAT, PROTOCOL_HEADER, FrameParser, Message, encode_method
from ._errors import ConnectionClosedError

__all__ = ["Connection", "Endpoint", "WhenBlocked", "connect", "login_response"]

WhenBlocked = Literal["wait", "fail"]
MECHANISMS = ("PLAIN", "EXTERNAL")

_CAPABILITIES = {
    "authentication_failure_close": True,
    "basic.nack": True,
    "connection.blocked": True,
    "consumer_cancel_notify": True,
    "exchange_exchange_bindings": True,
    "per_consumer_qos": True,
    "publisher_confirms": True,
}
_FRAME_MAX = 131_072
_CHANNEL_MAX = 2_047
_CLOSE_TIMEOUT = 5.0


def login_response(offered: str, wanted: str, user: str, password: str) -> tuple[str, str]:
    """The SASL mechanism and response for ``connection.start-ok``, or ``ValueError``.

    ``offered`` is the broker's space-separated list; ``wanted`` is ``PLAIN`` (user and password)
    or ``EXTERNAL`` (the identity is the TLS client certificate's, so the response is empty).
    """
    mechanism = wanted.upper()
    if mechanism not in MECHANISMS:
        raise ValueError(f"unsupported login mechanism {wanted!r} (supported: {', '.join(MECHANISMS)})")
    mechanisms = offered.split()
    if mechanism not in mechanisms:
        hint = " (enable the rabbitmq_auth_mechanism_ssl plugin and use amqps)" if mechanism == "EXTERNAL" else ""
        raise ValueError(f"the broker offers no {mechanism} login (only {' '.join(mechanisms) or 'none'}){hint}")
    return mechanism, f"\0{user}\0{password}" if mechanism == "PLAIN" else ""


class Connection(asyncio.Protocol):
    """One broker connection; open it with ``connect``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, user: str, password: str, vhost: str,
                 heartbeat: int | None, client_properties: dict[str, Any], name: str, mechanism: str = "PLAIN",
                 when_blocked: WhenBlocked = "wait") -> None:
        self.loop = loop
        self.name = name
        self.frame_max = _FRAME_MAX
        self.heartbeat = 0
        self.blocked = False
        self.blocked_reason = ""
        self.when_blocked: WhenBlocked = when_blocked
        self.mechanism = mechanism
        self._secret_ok: asyncio.Future[None] | None = None
        self.closing: asyncio.Future[None] = loop.create_future()
        self.close_reason: BaseException | None = None
        self._credentials = (user, password)
        self._vhost = vhost
        self._heartbeat_wanted = heartbeat
        self._client_properties = client_properties
        self._opened: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._parser = FrameParser(self)
        self._channels: dict[int, Channel] = {}
        self._channel_max = _CHANNEL_MAX
        self._next_channel = 1
        self._writable: asyncio.Future[None] | None = None
        self._close_ok: asyncio.Future[None] | None = None
        self._last_read = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._outgoing: list[bytes] = []

    def __repr__(self) -> str:
        return f"<Connection {self.name}{' closed' if self.is_closed else ''}>"

    @property
    def is_closed(self) -> bool:
        return self.closing.done()

    @property
    def peer(self) -> tuple[str, int] | None:
        """The broker address this connection reached (host, port): which node of a cluster it is on."""
        if self._transport is None:
            return None
        host, port = self._transport.get_extra_info("peername")[:2]
        return str(host), int(port)

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(PROTOCOL_HEADER)

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        try:
            self._parser.feed(data)
        except ValueError as exc:  # a framing error: the stream cannot be trusted any more
            self._abort(ConnectionClosedError(f"framing error: {exc}", 501))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.close_reason or ConnectionClosedError(
            f"connection lost: {exc!r}" if exc else "connection closed by the broker"
        )
        self._finish(reason)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- FrameSink --------------------------------------------------------------------------------

    def on_message(self, channel: int, message: Message) -> None:
        target = self._channels.get(channel)
        if target is not None:
            target._on_message(message)

    def on_confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None:
        target = self._channels.get(channel)
        if target is not None:
            target._on_confirm(delivery_tag, multiple, ack)

    def on_heartbeat(self) -> None:
        pass  # data_received already noted that the broker is alive

    def on_method(self, channel: int, method: MethodFrame) -> None:
        if channel:
            target = self._channels.get(channel)
            if target is not None:
                target._on_method(method)
            return
        if isinstance(method, spec.Connection.Start):
            self._on_start(method)
        elif isinstance(method, spec.Connection.Tune):
            self._on_tune(method)
        elif isinstance(method, spec.Connection.OpenOk):
            if not self._opened.done():
                self._opened.set_result(None)
        elif isinstance(method, spec.Connection.Blocked):
            self.blocked, self.blocked_reason = True, method.reason or ""
            if self.when_blocked == "fail":
                for open_channel in list(self._channels.values()):
                    open_channel.refuse_unconfirmed()
        elif isinstance(method, spec.Connection.Unblocked):
            self.blocked, self.blocked_reason = False, ""
            for open_channel in list(self._channels.values()):
                open_channel.release()
        elif isinstance(method, spec.Connection.UpdateSecretOk):
            if self._secret_ok is not None and not self._secret_ok.done():
                self._secret_ok.set_result(None)
        elif isinstance(method, spec.Connection.Close):
            self.write(encode_method(0, spec.Connection.CloseOk()))
            self._flush()
            self._abort(ConnectionClosedError(method.reply_text or "closed by the broker", method.reply_code or 0))
        elif isinstance(method, spec.Connection.CloseOk) and self._close_ok and not self._close_ok.done():
            self._close_ok.set_result(None)

    # -- handshake ----------------------------------------------------------------------------------

    def _on_start(self, start: spec.Connection.Start) -> None:
        user, password = self._credentials
        try:
            mechanism, response = login_response(start.mechanisms or "", self.mechanism, user, password)
        except ValueError as exc:
            self._abort(ConnectionClosedError(str(exc), 403))
            return
        properties = {
            "product": "eventbus",
            "platform": f"Python {platform.python_version()}",
            "capabilities": _CAPABILITIES,
            **self._client_properties,
        }
        self.write(encode_method(0, spec.Connection.StartOk(
            client_properties=properties, mechanism=mechanism, response=response, locale="en_US",
        )))

    def _on_tune(self, tune: spec.Connection.Tune) -> None:
        self._channel_max = min(tune.channel_max or _CHANNEL_MAX, _CHANNEL_MAX)
        self.frame_max = min(tune.frame_max or _FRAME_MAX, _FRAME_MAX)
        wanted = self._heartbeat_wanted
        self.heartbeat = tune.heartbeat if wanted is None else wanted
        self.write(encode_method(0, spec.Connection.TuneOk(
            channel_max=self._channel_max, frame_max=self.frame_max, heartbeat=self.heartbeat,
        )))
        self.write(encode_method(0, spec.Connection.Open(virtual_host=self._vhost)))
        if self.heartbeat:
            self._timer = self.loop.call_later(self.heartbeat / 2, self._beat)

    def _beat(self) -> None:
        """Send a heartbeat every half interval; give up after two silent intervals from the broker."""
        if self.is_closed:
            return
        if self.loop.time() - self._last_read > self.heartbeat * 2:
            self._abort(ConnectionClosedError(f"no heartbeat from the broker for {self.heartbeat * 2}s"))
            return
        with contextlib.suppress(ConnectionError):  # closing right now: connection_lost follows
            self.write(HEARTBEAT)
        self._timer = self.loop.call_later(self.heartbeat / 2, self._beat)

    # -- writing and channels -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the socket; it leaves at the end of this loop iteration, in order."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise self.close_reason or ConnectionClosedError("the connection is closed")
        outgoing = self._outgoing
        if not outgoing:
            self.loop.call_soon(self._flush)
        outgoing.append(data)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        transport = self._transport
        if outgoing and transport is not None and not transport.is_closing():
            transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    async def writable(self) -> None:
        """Wait while the socket's write buffer is over its high-water mark."""
        while self._writable is not None:
            await self._writable

    async def update_secret(self, secret: str, reason: str = "secret refreshed") -> None:
        """Give the broker a new password or token for this live connection (``connection.update-secret``).

        The broker checks it with its auth backend; a refusal closes the connection with the
        broker's reason (raised here as ``ConnectionClosedError``). One update at a time.
        """
        if self.is_closed:
            raise self.close_reason or ConnectionClosedError("the connection is closed")
        if self._secret_ok is not None:
            raise RuntimeError("an update-secret is already waiting for its answer")
        self._secret_ok = self.loop.create_future()
        try:
            self.write(encode_method(0, spec.Connection.UpdateSecret(new_secret=secret, reason=reason)))
            await self._secret_ok
        finally:
            self._secret_ok = None
        self._credentials = (self._credentials[0], secret)

    async def channel(self, *, publisher_confirms: bool = False) -> Channel:
        if self.is_closed:
            raise self.close_reason or ConnectionClosedError("the connection is closed")
        number = self._free_channel()
        channel = Channel(self, number)
        self._channels[number] = channel
        try:
            await channel.open()
            if publisher_confirms:
                await channel.confirm_select()
        except BaseException:
            channel._closed(ConnectionClosedError("channel could not be opened"))
            raise
        return channel

    def _free_channel(self) -> int:
        for _ in range(self._channel_max):
            number = self._next_channel
            self._next_channel = number % self._channel_max + 1
            if number not in self._channels:
                return number
        raise ConnectionClosedError(f"all {self._channel_max} channels are in use")

    def _release(self, channel: Channel) -> None:
        if self._channels.get(channel.number) is channel:
            del self._channels[channel.number]
        self._parser.drop(channel.number)

    # -- closing ------------------------------------------------------------------------------------

    def _abort(self, reason: BaseException) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        if self._transport is not None:
            self._transport.abort()
        self._finish(reason)

    def _finish(self, reason: BaseException) -> None:
        if self.closing.done():
            return
        if self.close_reason is None:
            self.close_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        if not self._opened.done():
            self._opened.set_exception(reason)
            self._opened.exception()  # retrieved: nobody may be waiting (the socket never opened)
        for channel in list(self._channels.values()):
            channel._closed(reason)
        if self._secret_ok is not None and not self._secret_ok.done():
            self._secret_ok.set_exception(reason)
        self.resume_writing()
        if self._close_ok is not None and not self._close_ok.done():
            self._close_ok.set_result(None)
        self.closing.set_result(None)

    async def close(self) -> None:
        """Say goodbye to the broker (``connection.close``), then close the socket."""
        if self.is_closed:
            return
        reason = ConnectionClosedError("closed by the client", 200)
        if self._opened.done() and not self._opened.exception():
            self._close_ok = self.loop.create_future()
            with contextlib.suppress(ConnectionError):
                goodbye = spec.Connection.Close(reply_code=200, reply_text="Normal shutdown", class_id=0, method_id=0)
                self.write(encode_method(0, goodbye))
                self._flush()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_CLOSE_TIMEOUT):
                        await self._close_ok
        self.close_reason = self.close_reason or reason
        self._flush()
        if self._transport is not None:
            self._transport.close()
        self._finish(reason)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, read from an AMQP URI (the RabbitMQ URI spec, plus the TLS query
    parameters aio-pika users already write: ``cafile``, ``certfile``, ``keyfile``, ``no_verify_ssl``)."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    heartbeat: int | None
    tls: bool
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    verify: bool = True
    mechanism: str = "PLAIN"

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"not an AMQP URL: {parts.scheme!r}")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        tls = parts.scheme == "amqps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if tls else 5672),
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
            heartbeat=int(query["heartbeat"]) if "heartbeat" in query else None,
            tls=tls,
            cafile=query.get("cafile"),
            certfile=query.get("certfile"),
            keyfile=query.get("keyfile"),
            verify=query.get("no_verify_ssl", "0") not in ("1", "true", "yes"),
            mechanism=(query.get("auth_mechanism") or query.get("auth") or "PLAIN").upper(),
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


async def connect(
    url: str, *, heartbeat: int | None = None, client_properties: dict[str, Any] | None = None, name: str = "",
    when_blocked: WhenBlocked = "wait",
) -> Connection:
    """Open a connection to ``url`` (``amqp://user:pass@host:port/vhost?heartbeat=N``, or ``amqps``;
    ``?auth_mechanism=external`` logs in with the TLS client certificate instead of the password).

    ``heartbeat`` is the interval to ask for when the URL does not name one (None: the broker's).
    ``when_blocked`` says what publishes do while the broker blocks the connection: ``"wait"``
    (held here until it lets go) or ``"fail"`` (``PublishBlocked`` at once).

    The caller bounds the time (``asyncio.timeout``); a refused login raises
    ``ConnectionClosedError`` with the broker's code (403).
    """
    endpoint = Endpoint.from_url(url)
    loop = asyncio.get_running_loop()
    connection = Connection(
        loop, user=endpoint.user, password=endpoint.password, vhost=endpoint.vhost,
        heartbeat=heartbeat if endpoint.heartbeat is None else endpoint.heartbeat,
        client_properties=dict(client_properties or {}), name=name or endpoint.host, mechanism=endpoint.mechanism,
        when_blocked=when_blocked,
    )
    try:
        await loop.create_connection(lambda: connection, endpoint.host, endpoint.port, ssl=endpoint.ssl_context())
        await connection._opened
    except BaseException:
        connection._abort(ConnectionClosedError("could not connect"))
        raise
    return connection
