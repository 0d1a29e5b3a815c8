"""Connection and consumer settings as one small typed value object.

Library code never reads the environment behind the caller's back: ``BusSettings.from_env``
is the one explicit place that does, for services and the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from ._exceptions import ConfigurationError

__all__ = ["DEFAULT_URL", "BusSettings", "redact_url"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


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
    concurrency; it is never unbounded, so a slow service cannot hoard a queue.
    ``confirm_timeout`` bounds how long a publish waits for the broker's confirm before it
    raises: a publish either is confirmed or fails loudly.
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
    client_properties: Mapping[str, str] = field(default_factory=dict)

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
        if self.queue_type not in ("quorum", "classic"):
            raise ConfigurationError(f"queue_type must be 'quorum' or 'classic', got {self.queue_type!r}")
        if self.confirm_timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigurationError("timeouts must be positive")
        if self.publish_window < 1:
            raise ConfigurationError("publish_window must be at least 1")
        if not self.source:
            object.__setattr__(self, "source", f"/services/{self.service}")

    @property
    def url(self) -> str:
        return self.urls[0]

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None, **overrides: object) -> BusSettings:
        """Settings from ``EVENTBUS_URL`` (comma-separated for several brokers) and ``EVENTBUS_PREFETCH``."""
        environ = os.environ if env is None else env
        urls = tuple(u.strip() for u in environ.get("EVENTBUS_URL", DEFAULT_URL).split(",") if u.strip())
        values: dict[str, object] = {"service": service, "urls": urls}
        if "EVENTBUS_PREFETCH" in environ:
            try:
                values["prefetch"] = int(environ["EVENTBUS_PREFETCH"])
            except ValueError:
                raise ConfigurationError("EVENTBUS_PREFETCH must be an integer") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> BusSettings:
        return replace(self, **changes)  # type: ignore[arg-type]
