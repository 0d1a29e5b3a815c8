"""What to do after a handler failed: try again later, or park. Pure decisions, no I/O.

Both shells (aio-pika and pika) ask ``RetryPolicy.decide`` and then carry the answer out:
a ``Retry`` is a confirmed publish of a copy into the delay queues (``_delay.py``) whose
dead-letter target is the failing consumer's own queue, then an ack of the original; a
``ParkReason`` is a confirmed publish to ``<queue>.dlq``, then an ack. Nothing is ever held
unacked to implement a wait, so the broker's ``consumer_timeout`` never fires because of us.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ._exceptions import ConfigurationError, HandlerTimeoutError, ParkMessage, RetryLater
from ._parking import ParkReason

__all__ = [
    "DEFAULT_RETRY",
    "ExponentialBackoff",
    "ReconnectWindow",
    "Retry",
    "RetryPolicy",
    "failure_reason",
    "format_traceback",
]

_TRACEBACK_FRAMES = 8
_TRACEBACK_CHARS = 4000


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Delay before attempt n+1 after attempt n failed: ``first * factor**(n-1)``, capped at ``maximum``.

    ``jitter`` spreads retries of many messages that failed together (a database restart):
    the delay is drawn uniformly from ``[d * (1 - jitter), d]``, so it never exceeds the
    computed value and never drops below half of it with the default 0.5. ``jitter=0``
    makes delays exact (useful in tests and for rate-limited APIs).
    """

    first: float = 2.0
    factor: float = 4.0
    maximum: float = 3600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.first < 0 or self.maximum < self.first:
            raise ConfigurationError("backoff needs 0 <= first <= maximum")
        if self.factor < 1:
            raise ConfigurationError("backoff factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("backoff jitter must be between 0 and 1")

    def delay(self, failed_attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        exponent = max(0, failed_attempt - 1)
        # Cap before multiplying out so a large attempt number cannot overflow a float.
        base = self.maximum if exponent > 64 else min(self.maximum, self.first * self.factor**exponent)
        if self.jitter:
            base *= 1.0 - self.jitter * rng()
        return base


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again: publish a copy that reaches this queue after ``delay`` seconds as ``attempt``."""

    delay: float
    attempt: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a handler's failures are retried. One per handler, with a bus-wide default.

    ``max_attempts`` counts handler runs, the first one included (1 = never retry).
    ``retry_on`` lists what is worth retrying (default: any ``Exception``); ``give_up_on``
    lists what never gets better by waiting (a bug, bad data) and is parked at once. A handler
    can also decide itself: ``raise RetryLater(30)`` or ``raise ParkMessage("reason")``.
    """

    max_attempts: int = 5
    backoff: ExponentialBackoff = field(default_factory=ExponentialBackoff)
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """Park on the first failure."""
        return cls(max_attempts=1)

    def decide(self, exc: BaseException, attempt: int, rng: Callable[[], float] = random.random) -> Retry | ParkReason:
        """The fate of a message whose handler raised ``exc`` on attempt ``attempt``."""
        if isinstance(exc, ParkMessage):
            return ParkReason(exc.reason, str(exc), type(exc).__name__)
        if attempt >= self.max_attempts:
            return failure_reason(exc)
        if isinstance(exc, RetryLater):
            return Retry(exc.delay, attempt + 1)
        if isinstance(exc, self.give_up_on) or not isinstance(exc, self.retry_on):
            return failure_reason(exc)
        return Retry(self.backoff.delay(attempt, rng), attempt + 1)


DEFAULT_RETRY = RetryPolicy()


def failure_reason(exc: BaseException) -> ParkReason:
    """What the DLQ says about a handler that raised ``exc`` and will not be retried."""
    kind = type(exc)
    if isinstance(exc, ParkMessage | RetryLater):
        return ParkReason(exc.reason, str(exc), kind.__name__)
    code = "handler_timeout" if isinstance(exc, HandlerTimeoutError) else "handler_error"
    return ParkReason(code, f"{kind.__name__}: {exc}", f"{kind.__module__}.{kind.__qualname__}", format_traceback(exc))


def format_traceback(exc: BaseException) -> str:
    """The last few frames of ``exc``'s traceback, short enough for a message header."""
    text = "".join(traceback.format_exception(exc, limit=-_TRACEBACK_FRAMES)).rstrip()
    return text if len(text) <= _TRACEBACK_CHARS else "…" + text[-(_TRACEBACK_CHARS - 1) :]


class ReconnectWindow:
    """How long a publish keeps reconnecting after its connection broke, and how long it waits between tries.

    ``next_wait()`` after each failure: seconds to sleep before trying again, or None once
    ``seconds`` have passed since the first failure (then the caller raises).
    """

    _BACKOFF = ExponentialBackoff(first=0.2, factor=2.0, maximum=2.0, jitter=0.5)

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._seconds = seconds
        self._clock = clock
        self._started: float | None = None
        self._failures = 0

    def next_wait(self) -> float | None:
        now = self._clock()
        if self._started is None:
            self._started = now
        self._failures += 1
        if now - self._started >= self._seconds:
            return None
        return self._BACKOFF.delay(self._failures)
