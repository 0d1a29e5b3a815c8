"""What ``eventbus topology apply`` declares, and what a vhost holds that nothing explains; no I/O.

Desired: one topic exchange per contract domain, and for each ``--service`` the queues a consumer
of that service would declare for the types ``consumers.json`` registers it as reading (queue,
DLQ, the binding from the event's exchange and the one from the delay machinery), with the
arguments the SDK's defaults give (``BusSettings``). Explained: those, the delay machinery
(``eventbus.delay…``), and every durable queue ``<service>.<type>[.dlq]`` of a registered consumer
of a contract; anything else a person should look at, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from eventbus import BusSettings, ContractRegistry, consumer_queue_name
from eventbus._delay import DELIVER_EXCHANGE, Binding, ExchangeSpec, target_binding_key
from eventbus._topology import QueueSpec, queue_specs

__all__ = ["Plan", "QueueType", "Unexplained", "plan_topology", "read_consumers", "service_queues", "unexplained"]

QueueType = Literal["quorum", "classic"]
CONSUMERS_FILE = "consumers.json"
_MACHINERY = "eventbus.delay"  # eventbus.delay.*, eventbus.delayed.*: the shared delay machinery
_EVENT_TYPE = r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*"


@dataclass(frozen=True)
class Plan:
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[Binding, ...] = ()
    types_by_exchange: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Unexplained:
    kind: str  # "exchange" or "queue"
    name: str
    reason: str
    messages: int = 0


def read_consumers(contracts_dir: Path) -> dict[str, set[str]]:
    """Service → the event types it reads, from ``consumers.json`` beside the contracts (none: empty)."""
    path = contracts_dir / CONSUMERS_FILE
    if not path.is_file():
        return {}
    try:
        document = orjson.loads(path.read_bytes())
        entries = document["consumers"]
        services: dict[str, set[str]] = {}
        for entry in entries:
            services.setdefault(str(entry["service"]), set()).update(str(t) for t in entry.get("reads", []))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a consumers file ({exc}); 'eventbus contracts lint' says more") from None
    return services


def plan_topology(registry: ContractRegistry, consumers: Mapping[str, set[str]], services: Iterable[str],
                  queue_type: QueueType = "quorum") -> Plan:
    """Exchanges of every contract; queues and bindings of ``services`` (registered consumers only).

    The queues get the arguments the SDK gives a service of that ``queue_type`` (``BusSettings``).
    """
    settings = BusSettings(service="eventbus-topology", queue_type=queue_type)
    queues: list[QueueSpec] = []
    bindings: list[Binding] = []
    for service in services:
        if service not in consumers:
            known = ", ".join(sorted(consumers)) or "none"
            raise ValueError(f"service {service!r} is not in {CONSUMERS_FILE} (registered: {known})")
        for event_type in sorted(consumers[service]):
            contract = registry.get(event_type)
            queue = consumer_queue_name(service, event_type)
            queues.extend(queue_specs(queue, settings.queue_type, settings.delivery_limit))
            bindings.append(Binding(contract.exchange, queue, contract.routing_key))
            bindings.append(Binding(DELIVER_EXCHANGE, queue, target_binding_key(queue)))
    by_exchange = {name: tuple(c.type for c in registry if c.exchange == name) for name in registry.exchanges}
    return Plan(tuple(ExchangeSpec(name) for name in registry.exchanges), tuple(queues), tuple(bindings), by_exchange)


def _explains_queue(name: str, registry: ContractRegistry, consumers: Mapping[str, set[str]]) -> str | None:
    """Why the durable queue ``name`` is not explained, or None when it is."""
    base = name.removesuffix(".dlq")
    match = re.fullmatch(rf"(?P<service>.+)\.(?P<type>{_EVENT_TYPE})", base)
    if match is None:
        return "not a consumer queue (<service>.<event type>) of any contract"
    service, event_type = match["service"], match["type"]
    if event_type not in registry:
        return f"no contract for {event_type}"
    if event_type not in consumers.get(service, set()):
        return f"{service} is not registered in {CONSUMERS_FILE} as a consumer of {event_type}"
    return None


def unexplained(
    registry: ContractRegistry,
    consumers: Mapping[str, set[str]],
    exchanges: Iterable[str],
    queues: Mapping[str, Mapping[str, Any]],
) -> list[Unexplained]:
    """Exchanges and durable queues on the broker that no contract or registered consumer accounts for."""
    found = [
        Unexplained("exchange", name, "no contract publishes to it")
        for name in sorted(exchanges)
        if name not in registry.exchanges and not name.startswith(_MACHINERY)
    ]
    for name, record in sorted(queues.items()):
        if name.startswith(_MACHINERY) or record.get("exclusive") or record.get("auto_delete"):
            continue  # the delay machinery, and private queues (taps) that go away by themselves
        reason = _explains_queue(name, registry, consumers)
        if reason is not None:
            found.append(Unexplained("queue", name, reason, int(record.get("messages") or 0)))
    return found


def service_queues(service: str, names: Iterable[str]) -> list[str]:
    """The consumer queues and DLQs of ``service`` among ``names``: ``<service>.<event type>[.dlq]``."""
    pattern = re.compile(rf"{re.escape(service)}\.{_EVENT_TYPE}(\.dlq)?")
    return sorted(name for name in names if pattern.fullmatch(name))
