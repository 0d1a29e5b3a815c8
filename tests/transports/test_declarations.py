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
