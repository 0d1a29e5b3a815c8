"""A lean AMQP 0-9-1 client for the SDK's hot paths (private; see docs/performance.md).

``_codec`` turns frames into bytes and back with no I/O; ``_connection`` and ``_channel`` are
the asyncio shell: a ``Protocol`` that parses frames inside ``data_received`` and hands
deliveries and confirms to their channel with no task, queue or future per message.
"""

from ._channel import Channel, ConfirmBatch, Outgoing
from ._codec import Message, Properties
from ._connection import Connection, WhenBlocked, connect, login_response
from ._errors import (
    AMQPError,
    ChannelClosedError,
    ConnectionClosedError,
    MessageNacked,
    MessageReturned,
    PublishBlocked,
)

__all__ = [
    "AMQPError",
    "Channel",
    "ChannelClosedError",
    "ConfirmBatch",
    "Connection",
    "ConnectionClosedError",
    "Message",
    "MessageNacked",
    "MessageReturned",
    "Outgoing",
    "Properties",
    "PublishBlocked",
    "WhenBlocked",
    "connect",
    "login_response",
]
