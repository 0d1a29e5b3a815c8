"""Choosing a transport: by name in the settings or the environment, or as an object; what a
missing extra or an unknown name says. Nothing here connects."""

from __future__ import annotations

import importlib
import sys

import pytest

from eventbus import BusSettings, ConfigurationError, EventBus
from eventbus.testing import MemoryBroker, in_memory
from eventbus.transports import Transport


def test_the_lean_client_is_the_default_and_aio_pika_is_chosen_by_name() -> None:
    assert EventBus(BusSettings("svc")).transport.name == "lean"
    assert EventBus(BusSettings("svc", transport="aio-pika")).transport.name == "aio-pika"
    assert EventBus(BusSettings("svc"), transport="aio-pika").transport.name == "aio-pika"
    from_env = BusSettings.from_env("svc", env={"EVENTBUS_TRANSPORT": "aio-pika"})
    assert from_env.transport == "aio-pika"


def test_a_transport_object_is_used_as_given_and_every_one_meets_the_protocol() -> None:
    broker = MemoryBroker()
    memory = broker.transport()
    assert EventBus(BusSettings("svc"), transport=memory).transport is memory
    for bus in (EventBus(BusSettings("svc")), EventBus(BusSettings("svc", transport="aio-pika"))):
        assert isinstance(bus.transport, Transport)
    assert isinstance(memory, Transport)


def test_in_memory_puts_every_bus_made_inside_on_the_broker() -> None:
    broker = MemoryBroker()
    with in_memory(broker):
        inside = EventBus(BusSettings("svc", transport="aio-pika"))
    assert inside.transport.name == "memory"
    assert EventBus(BusSettings("svc")).transport.name == "lean"


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="transport must be 'lean' or 'aio-pika'"):
        BusSettings("svc", transport="kombu")
    with pytest.raises(ConfigurationError, match="unknown transport 'kombu'"):
        EventBus(BusSettings("svc"), transport="kombu")


def test_without_aio_pika_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aio_pika", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "eventbus.transports._aio_pika", raising=False)
    with pytest.raises(ImportError, match=r'pip install "eventbus\[aio-pika\]"'):
        importlib.import_module("eventbus.transports._aio_pika")
