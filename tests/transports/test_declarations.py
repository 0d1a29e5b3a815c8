"""``transports/_declared.py``: each topology declared once per connection, even when many
publishes need it at the same moment (a burst used to open one channel each)."""

from __future__ import annotations

import asyncio

import pytest

from eventbus.transports._declared import Declarations


async def test_concurrent_callers_share_one_declaration() -> None:
    declarations = Declarations()
    calls = 0
    gate = asyncio.Event()

    async def declare() -> None:
        nonlocal calls
        calls += 1
        await gate.wait()

    waiting = [asyncio.create_task(declarations.once("chat", declare)) for _ in range(500)]
    await asyncio.sleep(0)
    assert "chat" not in declarations
    gate.set()
    await asyncio.gather(*waiting)
    assert calls == 1
    assert "chat" in declarations


async def test_a_refused_declaration_is_tried_again_and_clear_forgets() -> None:
    declarations = Declarations()
    outcomes = [ValueError("refused"), None, None]

    async def declare() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    with pytest.raises(ValueError):
        await declarations.once("q", declare)
    assert "q" not in declarations
    await declarations.once("q", declare)
    assert "q" in declarations
    declarations.clear()  # a new connection
    assert "q" not in declarations
    await declarations.once("q", declare)
    assert outcomes == []


async def test_a_declaration_is_recorded_on_the_connection_it_opened() -> None:
    """The first declaration opens the connection (which forgets what was declared): it must still
    count, or the next publish declares again on a connection that may be dying."""
    from eventbus import BusSettings
    from eventbus.transports import Topology
    from eventbus.transports._publishing import PublishingConnection

    declared: list[str] = []

    class Fake:
        is_closed = False

        async def close(self) -> None:
            return None

    class Counting(PublishingConnection[Fake, Fake]):
        async def _connect(self) -> Fake:
            return Fake()

        async def _confirm_channel(self, connection: Fake) -> Fake:
            return Fake()

        async def _declare_on(self, connection: Fake, topology: Topology) -> None:
            declared.append(topology.name)

    transport = Counting(BusSettings("svc"))
    await transport.declare(Topology("chat"))
    await transport.declare(Topology("chat"))
    assert declared == ["chat"]
