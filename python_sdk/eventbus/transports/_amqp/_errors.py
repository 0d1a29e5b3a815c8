"""What can go wrong on the wire, as exceptions that carry the broker's reply code and text."""

from __future__ import annotations

__all__ = [
    "AMQPError",
    "ChannelClosedError",
    "ConnectionClosedError",
    "MessageReturned",
    "MessageNacked",
    "PublishBlocked",
]


class AMQPError(Exception):
    """Base of this client's errors."""


class ConnectionClosedError(AMQPError, ConnectionError):
    """The connection is gone: closed by the broker (``code``/``text`` say why) or by the network."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(f"{code} {text}" if code else text)
        self.code = code
        self.text = text


class ChannelClosedError(AMQPError):
    """The broker closed a channel, e.g. 406 PRECONDITION_FAILED for a refused declaration."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(f"{code} {text}" if code else text)
        self.code = code
        self.text = text


class MessageReturned(AMQPError):
    """A mandatory publish that no queue was bound for (``basic.return``)."""

    def __init__(self, exchange: str, routing_key: str, code: int, text: str) -> None:
        super().__init__(f"{code} {text}: exchange {exchange!r}, routing key {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key
        self.code = code


class MessageNacked(AMQPError):
    """The broker refused to take responsibility for a publish (``basic.nack``)."""


class PublishBlocked(MessageNacked):
    """The broker holds publishers back (``connection.blocked``, ``channel.flow``) and the connection
    was opened with ``when_blocked="fail"``: not sent, or sent just before and not confirmed (the
    text says which)."""
