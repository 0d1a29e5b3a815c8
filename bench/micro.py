"""The SDK's pure-Python work per message, timed in isolation: no broker, one core, µs per call.

    .venv/bin/python bench/micro.py                   # --number 20000 --repeat 7
    PYTHONPATH=/path/to/other/checkout/python_sdk .venv/bin/python bench/micro.py   # the same on other code

Each row is the best of ``--repeat`` timeit runs of ``--number`` calls, timed in process CPU time
(``time.process_time``) so that other load on a shared machine shows up as little as possible, on
the ``conversation.ended`` payload from ``_payload.py`` with the headers ``build_outgoing`` writes,
as a consumer receives them.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventbus
from bench._payload import CONTRACT, make_events
from eventbus._dispatch import Delivery, QueueDispatcher, Ready, Subscription
from eventbus._envelope import parse_envelope
from eventbus._limits import DEFAULT_LIMITS, check_raw, load_json
from eventbus._outgoing import build_outgoing


async def _handler(event: Any, context: Any) -> None:
    return None


def _steps() -> dict[str, Callable[[], Any]]:
    event = make_events(1)[0]
    message = build_outgoing(event, source="/services/bench", subject="conv_1", contract=CONTRACT)
    body = message.body
    headers = dict(message.headers)
    delivery = Delivery(body=body, headers=headers, content_type=message.content_type, exchange=message.exchange,
                        routing_key=message.routing_key, redelivered=False)
    subscription = Subscription(contract=CONTRACT, handler=_handler, queue="bench", binding_keys=(CONTRACT.type,),
                                wants_context=True)
    dispatcher = QueueDispatcher("bench", [subscription])
    outcome = dispatcher.prepare(delivery)
    assert isinstance(outcome, Ready), outcome
    parsed = orjson.loads(body)
    validator = CONTRACT._validator
    model = CONTRACT.model
    return {
        "QueueDispatcher.prepare": lambda: dispatcher.prepare(delivery),
        "prepare: check_raw": lambda: check_raw(body, DEFAULT_LIMITS),
        "prepare: parse_envelope": lambda: parse_envelope(headers, message.content_type, body),
        "prepare: load_json": lambda: load_json(body, DEFAULT_LIMITS),
        "load_json: orjson.loads": lambda: orjson.loads(body),
        "prepare: jsonschema-rs is_valid": lambda: validator.is_valid(parsed),
        "prepare: pydantic model_validate": lambda: model.model_validate(parsed),
        "build_outgoing": lambda: build_outgoing(event, source="/services/bench", subject="conv_1",
                                                 contract=CONTRACT),
        "build_outgoing: contract.encode": lambda: CONTRACT.encode(event),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs per step; the best is printed")
    args = parser.parse_args()
    print(f"eventbus from {Path(eventbus.__file__).parent}")
    print("| step | µs per call |\n|---|---:|")
    for name, step in _steps().items():
        best = min(timeit.repeat(step, number=args.number, repeat=args.repeat, timer=time.process_time)) / args.number
        print(f"| {name} | {best * 1e6:.2f} |")


if __name__ == "__main__":
    main()
