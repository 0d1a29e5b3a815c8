"""Retry decisions and the failure history they write, with no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventbus import (
    BusSettings,
    ConfigurationError,
    EventBus,
    EventValidationError,
    ExponentialBackoff,
    HandlerTimeoutError,
    ParkMessage,
    RetryLater,
    RetryPolicy,
)
from eventbus._parking import park_headers, retry_headers
from eventbus._retry import ReconnectWindow, Retry, failure_reason
from eventbus_contracts import ConversationEndedV1


def test_backoff_grows_by_factor_and_stops_at_the_maximum() -> None:
    backoff = ExponentialBackoff(first=1, factor=3, maximum=20, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [1, 3, 9, 20, 20]
    assert backoff.delay(10_000) == 20  # no overflow on absurd attempt numbers


def test_jitter_stays_between_the_fraction_and_the_computed_delay() -> None:
    backoff = ExponentialBackoff(first=8, factor=2, maximum=100, jitter=0.5)
    assert backoff.delay(1, rng=lambda: 0.0) == 8
    assert backoff.delay(1, rng=lambda: 0.999999) == pytest.approx(4, abs=1e-4)
    assert backoff.delay(2, rng=lambda: 0.5) == 12


@pytest.mark.parametrize("kwargs", [{"first": -1}, {"first": 5, "maximum": 1}, {"factor": 0.5}, {"jitter": 2}])
def test_nonsense_backoffs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ExponentialBackoff(**kwargs)


POLICY = RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(first=1, factor=2, jitter=0),
                     give_up_on=(EventValidationError, KeyError))


def test_failures_are_retried_with_backoff_until_the_last_attempt() -> None:
    assert POLICY.decide(RuntimeError("db down"), 1) == Retry(1, 2)
    assert POLICY.decide(RuntimeError("db down"), 2) == Retry(2, 3)
    last = POLICY.decide(RuntimeError("db down"), 3)
    assert not isinstance(last, Retry)
    assert last.code == "handler_error"
    assert last.error == "RuntimeError: db down"
    assert last.error_type == "builtins.RuntimeError"


def test_permanent_errors_and_park_requests_skip_the_retries() -> None:
    assert POLICY.decide(KeyError("x"), 1).code == "handler_error"  # type: ignore[union-attr]
    parked = POLICY.decide(ParkMessage("customer_deleted"), 1)
    assert not isinstance(parked, Retry) and parked.code == "customer_deleted"
    only_value_errors = RetryPolicy(retry_on=(ValueError,))
    assert not isinstance(only_value_errors.decide(RuntimeError(), 1), Retry)
    assert isinstance(only_value_errors.decide(ValueError(), 1), Retry)


def test_retry_later_sets_the_delay_but_still_counts() -> None:
    assert POLICY.decide(RetryLater(timedelta(minutes=2)), 1) == Retry(120, 2)
    exhausted = POLICY.decide(RetryLater(5, reason="rate_limited"), 3)
    assert not isinstance(exhausted, Retry) and exhausted.code == "rate_limited"
    with pytest.raises(ValueError):
        RetryLater(-1)


def test_time_limits_park_as_handler_timeout_and_never_retrying_parks_at_once() -> None:
    reason = RetryPolicy.never().decide(HandlerTimeoutError(5, event_type="t", event_id="e"), 1)
    assert not isinstance(reason, Retry)
    assert reason.code == "handler_timeout" and "5s time limit" in reason.error
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)


def _raise_deep(depth: int) -> None:
    if depth:
        _raise_deep(depth - 1)
    raise RuntimeError("deep " + "x" * 5000)


def test_tracebacks_are_trimmed_to_the_last_frames_and_a_few_kilobytes() -> None:
    try:
        _raise_deep(30)
    except RuntimeError as exc:
        reason = failure_reason(exc)
    assert reason.traceback.count("_raise_deep") <= 8
    assert len(reason.traceback) <= 4000
    assert reason.traceback.endswith("x")


def test_time_limits_must_end_before_the_brokers_consumer_timeout() -> None:
    settings = BusSettings(service="svc")
    assert settings.time_limit(None) == 600
    assert settings.time_limit(30) == 30
    with pytest.raises(ConfigurationError, match="consumer_timeout"):
        settings.time_limit(1800)
    with pytest.raises(ConfigurationError, match="consumer_timeout"):
        BusSettings(service="svc", handler_timeout=3600)
    assert BusSettings(service="svc", handler_timeout=3600, consumer_timeout=7200).handler_timeout == 3600
    env = BusSettings.from_env("svc", env={"EVENTBUS_CONSUMER_TIMEOUT": "7200"}, handler_timeout=3600)
    assert env.consumer_timeout == 7200


BROKER_HEADERS = {"x-death": [{"count": 1}], "x-first-death-queue": "q", "x-delivery-count": 3}


def test_retry_copies_keep_the_event_and_start_the_history() -> None:
    original = {"cloudEvents_id": "e1", "cloudEvents_type": "t.v1", "traceparent": "00-aa-bb-01", **BROKER_HEADERS}
    first = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    headers = retry_headers(original, failure_reason(RuntimeError("boom")), exchange="chat", routing_key="t.v1",
                            queue="svc.t.v1", attempt=2, delay_ms=1500, deliver_at=first + timedelta(seconds=1.5),
                            now=first)
    assert not set(BROKER_HEADERS) & set(headers)
    assert headers["cloudEvents_id"] == "e1" and headers["traceparent"] == "00-aa-bb-01"
    assert headers["eventbus-attempt"] == 2
    assert headers["eventbus-first-failure-at"] == headers["eventbus-last-failure-at"] == "2026-11-25T17:00:00Z"
    assert headers["eventbus-retry-delay-ms"] == 1500
    assert headers["eventbus-deliver-at"] == "2026-11-25T17:00:01.500000Z"
    assert headers["eventbus-original-exchange"] == "chat"
    later = first + timedelta(minutes=3)
    parked = park_headers(headers, failure_reason(ValueError("still broken")), exchange="chat", routing_key="t.v1",
                          queue="svc.t.v1", attempt=3, now=later)
    assert parked["eventbus-first-failure-at"] == "2026-11-25T17:00:00Z"
    assert parked["eventbus-last-failure-at"] == parked["eventbus-parked-at"] == "2026-11-25T17:03:00Z"
    assert parked["eventbus-attempt"] == 3
    assert parked["eventbus-park-reason"] == "handler_error"
    assert parked["eventbus-error"] == "ValueError: still broken"
    assert parked["eventbus-error-type"] == "builtins.ValueError"
    assert "ValueError: still broken" in parked["eventbus-traceback"]
    assert "eventbus-retry-delay-ms" not in parked and "eventbus-deliver-at" not in parked


def test_a_reconnect_window_backs_off_then_gives_up() -> None:
    now = [0.0]
    window = ReconnectWindow(5, clock=lambda: now[0])
    waits = []
    while (wait := window.next_wait()) is not None:
        waits.append(wait)
        now[0] += wait
    assert waits and all(0 < w <= 2 for w in waits)
    assert sum(waits) >= 5 - 2


def test_bad_subscriptions_are_refused_when_the_decorator_runs() -> None:
    bus = EventBus(BusSettings(service="svc"))
    with pytest.raises(ConfigurationError, match="executor"):
        bus.subscribe(ConversationEndedV1, executor="fibers")(lambda event: None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="async"):
        bus.subscribe(ConversationEndedV1, executor="thread")(_async_noop)
    with pytest.raises(ConfigurationError, match="consumer_timeout"):
        bus.subscribe(ConversationEndedV1, timeout=3600)(_async_noop)


async def _async_noop(event: ConversationEndedV1) -> None:
    return None
