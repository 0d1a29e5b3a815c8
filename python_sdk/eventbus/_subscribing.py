"""Turning ``@bus.subscribe(Model, …)`` into a ``Subscription``, the same way in both shells.

Everything that can be wrong with a subscription is refused here, when the decorator runs,
not when the first message arrives: a model without a contract, a handler with the wrong
arity, a time limit the broker would not honour, a queue name too long to be a retry target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from ._contract import contract_for
from ._delay import target_binding_key
from ._dispatch import Subscription, handler_arity
from ._limits import InputLimits
from ._retry import RetryPolicy
from ._settings import BusSettings
from ._topology import consumer_queue_name

__all__ = ["group_by_queue", "make_subscription"]


def make_subscription(
    settings: BusSettings,
    model: type[BaseModel],
    handler: Callable[..., Any],
    call: Callable[..., Any],
    *,
    queue: str | None,
    binding_keys: Sequence[str] | None,
    retry: RetryPolicy | None,
    timeout: float | None,
    single_active_consumer: bool = False,
    limits: InputLimits | None = None,
) -> Subscription:
    """A subscription that calls ``call`` (the shell's wrapper of ``handler``) with ``handler``'s arity."""
    contract = contract_for(model)
    queue_name = queue or consumer_queue_name(settings.service, contract.type)
    target_binding_key(queue_name)  # refuses names too long to come back from a delay queue
    return Subscription(
        contract=contract,
        handler=call,
        queue=queue_name,
        binding_keys=tuple(binding_keys or (contract.routing_key,)),
        wants_context=handler_arity(handler),
        retry=retry or settings.retry,
        timeout=settings.time_limit(timeout),
        single_active_consumer=single_active_consumer,
        limits=limits,
    )


def group_by_queue(subscriptions: Iterable[Subscription]) -> dict[str, list[Subscription]]:
    by_queue: dict[str, list[Subscription]] = {}
    for subscription in subscriptions:
        by_queue.setdefault(subscription.queue, []).append(subscription)
    return by_queue
