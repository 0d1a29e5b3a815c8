"""Connection and consumer settings as one small typed value object.

Library code never reads the environment behind the caller's back: ``BusSettings.from_env``
is the one explicit place that does, for services and the CLI.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from ._exceptions import ConfigurationError
from ._limits import DEFAULT_LIMITS, InputLimits
from ._retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["DEFAULT_URL", "BusSettings", "note_unreachable", "redact_url"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_UNREACHABLE_FOR = 30.0  # seconds a URL that refused is tried after the others
_unreachable: dict[str, float] = {}


def note_unreachable(url: str, now: float | None = None) -> None:
    """Remember that ``url`` did not answer, so every connection role tries the others first for a while."""
    _unreachable[url] = time.monotonic() if now is None else now


def check_time_limit(limit: float, consumer_timeout: float) -> None:
    """A handler time limit must be positive and end before the broker's ``consumer_timeout``."""
    if limit <= 0:
        raise ConfigurationError(f"a handler time limit must be positive, got {limit:g}s")
    if limit >= consumer_timeout:
        raise ConfigurationError(
            f"a handler time limit of {limit:g}s is not below the broker's consumer_timeout of "
            f"{consumer_timeout:g}s: the broker would close the channel under the handler and redeliver "
            "everything on it. Raise consumer_timeout on the broker (and in BusSettings) first."
        )


def redact_url(url: str) -> str:
    """The URL with its password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True, slots=True)
class BusSettings:
    """How one service talks to the broker.

    ``prefetch`` bounds unacknowledged deliveries per consumer and therefore the handler
    concurrency (``eventbus worker --concurrency`` sets it); it is never unbounded, so a slow
    service cannot hoard a queue. ``confirm_timeout`` bounds how long a publish waits for the
    broker's confirm (also while the broker blocks publishers) before it raises: a publish
    either is confirmed or fails loudly. ``reconnect_window`` is how long a publish keeps
    reconnecting after the connection dropped before it raises. ``transport`` is the AMQP
    client: ``"lean"`` (the SDK's own) or ``"aio-pika"`` (the ``eventbus[aio-pika]`` extra), for
    anyone who meets a protocol corner of the lean one.

    Consumers: ``retry`` is the default ``RetryPolicy`` of every handler; ``handler_timeout``
    the default time limit (seconds) of one handler run, which must stay below the broker's
    ``consumer_timeout`` (30 min unless the broker is configured otherwise; tell us with
    ``consumer_timeout`` or ``EVENTBUS_CONSUMER_TIMEOUT``), or the broker would close the
    channel under a slow handler and redeliver everything on it. ``delivery_limit`` is the
    quorum queues' broker-side safety net (``x-delivery-limit``) against consumers that crash
    before they can count attempts; 0 leaves it out. ``limits`` bound what a consumer parses.
    ``shutdown_grace`` is how long in-flight handlers may finish after SIGTERM.

    ``when_blocked`` is what a publish does while the broker blocks publishers (memory or disk
    alarm): ``"wait"`` holds it until the alarm clears, up to ``confirm_timeout``, then raises
    ``PublishBlockedError``; ``"fail"`` raises ``PublishBlockedError`` at once.

    ``revocations_url`` (``redis://…``, ``EVENTBUS_REVOCATIONS_URL``) is the revocation store:
    with it, ``cancel``/``revoke`` work and consumers drop revoked workflow steps and delayed
    messages (docs/workflows.md, Cancel and revoke); without it there is no check and no cost.
    """

    service: str
    urls: tuple[str, ...] = (DEFAULT_URL,)
    prefetch: int = 100
    queue_type: Literal["quorum", "classic"] = "quorum"
    confirm_timeout: float = 30.0
    connect_timeout: float = 10.0
    heartbeat: int = 30
    source: str = ""
    publish_window: int = 500
    transport: str = "lean"
    client_properties: Mapping[str, str] = field(default_factory=dict)
    reconnect_window: float = 15.0
    retry: RetryPolicy = DEFAULT_RETRY
    handler_timeout: float = 600.0
    consumer_timeout: float = 1800.0
    delivery_limit: int = 20
    limits: InputLimits = DEFAULT_LIMITS
    shutdown_grace: float = 30.0
    when_blocked: Literal["wait", "fail"] = "wait"
    revocations_url: str | None = None

    def __post_init__(self) -> None:
        if not _SERVICE_NAME.match(self.service):
            raise ConfigurationError(
                f"service name {self.service!r} must be lowercase letters, digits, '.', '_' or '-' "
                "(it becomes part of queue names)"
            )
        if not self.urls:
            raise ConfigurationError("at least one broker URL is needed")
        for url in self.urls:
            if urlsplit(url).scheme not in ("amqp", "amqps"):
                raise ConfigurationError(f"broker URL must start with amqp:// or amqps://: {redact_url(url)}")
        if not 1 <= self.prefetch <= 65535:
            raise ConfigurationError(f"prefetch must be between 1 and 65535, got {self.prefetch}")
        if self.transport not in ("lean", "aio-pika"):
            raise ConfigurationError(f"transport must be 'lean' or 'aio-pika', got {self.transport!r}")
        if self.queue_type not in ("quorum", "classic"):
            raise ConfigurationError(f"queue_type must be 'quorum' or 'classic', got {self.queue_type!r}")
        if self.confirm_timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigurationError("timeouts must be positive")
        if self.publish_window < 1:
            raise ConfigurationError("publish_window must be at least 1")
        if self.reconnect_window < 0 or self.shutdown_grace < 0:
            raise ConfigurationError("reconnect_window and shutdown_grace must not be negative")
        if self.when_blocked not in ("wait", "fail"):
            raise ConfigurationError(f"when_blocked must be 'wait' or 'fail', got {self.when_blocked!r}")
        if self.delivery_limit < 0:
            raise ConfigurationError("delivery_limit must be 0 (none) or positive")
        check_time_limit(self.handler_timeout, self.consumer_timeout)
        store = self.revocations_url
        if store is not None and urlsplit(store).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(f"revocations_url must start with redis://, rediss:// or unix://: "
                                     f"{redact_url(store)}")
        if not self.source:
            object.__setattr__(self, "source", f"/services/{self.service}")

    def time_limit(self, limit: float | None) -> float:
        """A handler's time limit: its own, or the default; refused when the broker would not wait."""
        chosen = self.handler_timeout if limit is None else float(limit)
        check_time_limit(chosen, self.consumer_timeout)
        return chosen

    @property
    def url(self) -> str:
        return self.urls[0]

    def connect_order(self, now: float | None = None) -> list[str]:
        """The broker URLs in the order a new connection tries them.

        Shuffled for every connection, so the publishers, consumers and helper connections of
        many processes spread over a cluster's nodes, and a reconnect after a node loss lands on
        any live node; a URL that refused within the last 30 s (``note_unreachable``) goes last,
        so a dead node costs one refused attempt, not one per connection. With one URL, that one.
        """
        if len(self.urls) == 1:
            return list(self.urls)
        now = time.monotonic() if now is None else now
        shuffled = random.sample(self.urls, len(self.urls))
        return sorted(shuffled, key=lambda url: now - _unreachable.get(url, -1e18) < _UNREACHABLE_FOR)

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None, **overrides: object) -> BusSettings:
        """Settings from ``EVENTBUS_URL`` (comma-separated for several brokers), ``EVENTBUS_PREFETCH``,
        ``EVENTBUS_CONSUMER_TIMEOUT`` (seconds, when the broker's differs from 30 min),
        ``EVENTBUS_TRANSPORT`` (``lean`` or ``aio-pika``) and ``EVENTBUS_REVOCATIONS_URL`` (the
        revocation store, ``redis://…``)."""
        environ = os.environ if env is None else env
        urls = tuple(u.strip() for u in environ.get("EVENTBUS_URL", DEFAULT_URL).split(",") if u.strip())
        values: dict[str, object] = {"service": service, "urls": urls}
        numbers = (("EVENTBUS_PREFETCH", "prefetch", int), ("EVENTBUS_CONSUMER_TIMEOUT", "consumer_timeout", float))
        for name, key, kind in numbers:
            if name in environ:
                try:
                    values[key] = kind(environ[name])
                except ValueError:
                    raise ConfigurationError(f"{name} must be a number") from None
        if environ.get("EVENTBUS_TRANSPORT"):
            values["transport"] = environ["EVENTBUS_TRANSPORT"]
        if environ.get("EVENTBUS_REVOCATIONS_URL"):
            values["revocations_url"] = environ["EVENTBUS_REVOCATIONS_URL"]
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> BusSettings:
        return replace(self, **changes)  # type: ignore[arg-type]
