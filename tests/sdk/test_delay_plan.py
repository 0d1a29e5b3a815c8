"""The delay machinery as data: a message routed through the declared levels waits exactly its delay.

The broker's topic matching is simulated here (``*`` = one word, ``#`` = any number), so every
binding the SDK declares is exercised without a broker; tests/sdk/test_retries.py and the
fault suite check the same topology on RabbitMQ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventbus import ConfigurationError
from eventbus._delay import (
    DELAY_LEVELS,
    DELIVER_EXCHANGE,
    MAX_DELAY,
    TICK_MS,
    UNROUTABLE_QUEUE,
    delay_route,
    delay_ticks,
    delay_topology,
    landing_queue,
    level_name,
    target_binding_key,
    ticks_until,
)


def _matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    words, parts = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(words):
            return j == len(parts)
        if words[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and words[i] in ("*", parts[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _travel(exchange: str, key: str, targets: dict[str, str]) -> tuple[int, list[str]]:
    """Follow a message through the topology: (total TTL in ms, queues it ends up in)."""
    topology = delay_topology()
    ttl = {q.name: q.arguments["x-message-ttl"] for q in topology.queues if "x-message-ttl" in q.arguments}
    dlx = {q.name: q.arguments["x-dead-letter-exchange"] for q in topology.queues if "x-message-ttl" in q.arguments}
    waited = 0
    while True:
        if exchange == DELIVER_EXCHANGE:
            found = [queue for queue, pattern in targets.items() if _matches(pattern, key)]
            return waited, found or [UNROUTABLE_QUEUE]
        hops = [b for b in topology.bindings if b.source == exchange and _matches(b.routing_key, key)]
        assert len(hops) == 1, (exchange, key, hops)
        hop = hops[0]
        if hop.to_exchange:
            exchange = hop.destination
        else:
            waited += ttl[hop.destination]
            exchange = dlx[hop.destination]


TARGETS = {
    "svc.chat.conversation.ended.v1": target_binding_key("svc.chat.conversation.ended.v1"),
    "a.svc.chat.conversation.ended.v1": target_binding_key("a.svc.chat.conversation.ended.v1"),
}


@pytest.mark.parametrize("seconds", [0, 0.1, 1, 5, 5.2, 59.9, 3600, 86_400 * 7])
def test_a_message_waits_its_delay_and_reaches_only_its_target(seconds: float) -> None:
    ticks = delay_ticks(seconds)
    for target in TARGETS:
        route = delay_route(ticks, target)
        waited, queues = _travel(route.exchange, route.routing_key, TARGETS)
        assert waited == round(seconds * 1000 / TICK_MS) * TICK_MS
        assert queues == [target]  # a suffix-sharing queue name never matches


def test_the_first_exchange_is_the_level_of_the_highest_bit() -> None:
    assert delay_route(1, "q").exchange == level_name(0)
    assert delay_route(52, "q").exchange == level_name(5)
    assert delay_route(52, "q").routing_key.endswith(".1.1.0.1.0.0.q")
    assert len(delay_route(52, "q").routing_key.split(".")) == DELAY_LEVELS + 1


def test_each_level_queue_has_a_fixed_ttl_so_it_never_blocks_a_shorter_delay() -> None:
    queues = {q.name: q.arguments for q in delay_topology().queues}
    for level in range(DELAY_LEVELS):
        arguments = queues[level_name(level)]
        assert arguments["x-message-ttl"] == TICK_MS * 2**level
        assert arguments["x-dead-letter-exchange"] == (level_name(level - 1) if level else DELIVER_EXCHANGE)
        assert arguments["x-queue-type"] == "quorum"  # replicated on a cluster
        assert arguments["x-dead-letter-strategy"] == "at-least-once"  # leaves only once the next hop has it
        assert arguments["x-overflow"] == "reject-publish"  # what at-least-once needs
    assert sum(TICK_MS * 2**k for k in range(DELAY_LEVELS)) > MAX_DELAY.total_seconds() * 1000


def test_a_message_for_a_missing_target_lands_in_the_unroutable_queue() -> None:
    route = delay_route(3, "gone.queue")
    assert _travel(route.exchange, route.routing_key, TARGETS)[1] == [UNROUTABLE_QUEUE]


def test_delays_round_to_ticks_and_stay_within_seven_days() -> None:
    assert delay_ticks(1.04) == 10 and delay_ticks(1.06) == 11
    assert delay_ticks(timedelta(minutes=1)) == 600
    assert delay_ticks(-3) == 0  # due already
    assert delay_ticks(MAX_DELAY) == MAX_DELAY.total_seconds() * 10
    with pytest.raises(ConfigurationError, match="7 days"):
        delay_ticks(MAX_DELAY + timedelta(seconds=1))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ticks_until(now + timedelta(seconds=90), now) == 900
    with pytest.raises(ConfigurationError, match="timezone"):
        ticks_until(datetime(2026, 1, 1), now)


def test_landing_queues_hand_delayed_events_to_their_exchange_and_key() -> None:
    spec = landing_queue("chat", "chat.conversation.ended.v1")
    assert spec.name == "eventbus.delayed.v2.chat.chat.conversation.ended.v1"
    assert spec.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-message-ttl": 0,
        "x-dead-letter-exchange": "chat",
        "x-dead-letter-routing-key": "chat.conversation.ended.v1",
    }


def test_queue_names_too_long_for_a_routing_key_are_refused_up_front() -> None:
    with pytest.raises(ConfigurationError, match="too long"):
        target_binding_key("q" * 220)


def test_v2_names_leave_the_classic_v1_queues_to_drain_by_themselves() -> None:
    """New names, so an upgrade never redeclares a v1 classic queue as quorum (PRECONDITION_FAILED)."""
    topology = delay_topology()
    names = [q.name for q in topology.queues] + [e.name for e in topology.exchanges]
    assert all(name.startswith("eventbus.delay.v2.") for name in names)
    assert level_name(0) == "eventbus.delay.v2.00" and level_name(22) == "eventbus.delay.v2.22"
    assert DELIVER_EXCHANGE == "eventbus.delay.v2.deliver" and UNROUTABLE_QUEUE == "eventbus.delay.v2.unroutable"
    assert {q.name: q.arguments for q in topology.queues}[UNROUTABLE_QUEUE] == {"x-queue-type": "quorum"}
    exchanges = {e.name: e for e in topology.exchanges}
    assert exchanges[DELIVER_EXCHANGE].arguments == {"alternate-exchange": UNROUTABLE_QUEUE}
    assert exchanges[UNROUTABLE_QUEUE].type == "fanout"
    assert delay_route(52, "q").routing_key.startswith("0.")  # routing keys unchanged from v1
