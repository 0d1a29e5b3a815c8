"""The consumers file: who reads which event type and major version, in which language.

``contracts/consumers.json`` is what makes compatibility consumer-driven: ``breaking`` names the
services a change would break, refuses to retire a major version someone still reads, and the
catalog shows who subscribes to what. Format (version 1)::

    {
      "version": 1,
      "consumers": [
        {"service": "context-handling", "language": "python", "reads": ["chat.conversation.ended.v1"]}
      ]
    }

``reads`` holds full event types, major version included, exactly as ``x-eventbus.type`` spells
them, so a grep for a type finds its contract and its readers alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ._errors import ConsumersError

__all__ = ["CONSUMERS_FILE", "Consumer", "ConsumerRegistry", "load_consumers"]

CONSUMERS_FILE = "consumers.json"
_EVENT_TYPE = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$"


class _ConsumerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=r"^[a-z][a-z0-9._-]*$")
    language: str = Field(pattern=r"^[a-z][a-z0-9+#-]*$")
    reads: tuple[Annotated[str, StringConstraints(pattern=_EVENT_TYPE)], ...] = Field(min_length=1)
    repository: str | None = None


class _ConsumersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    consumers: tuple[_ConsumerEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Consumer:
    """One registered consuming service; ``pointer`` locates its entry in the consumers file."""

    service: str
    language: str
    reads: tuple[str, ...]
    pointer: str
    repository: str | None = None

    def label(self) -> str:
        return f"{self.service} ({self.language})"


@dataclass(frozen=True, slots=True)
class ConsumerRegistry:
    """Every registered consumer; ``path`` is ``None`` when the repository has no consumers file."""

    path: Path | None
    consumers: tuple[Consumer, ...] = ()

    def readers_of(self, event_type: str) -> tuple[Consumer, ...]:
        return tuple(consumer for consumer in self.consumers if event_type in consumer.reads)

    def read_pointers(self) -> list[tuple[Consumer, str, str]]:
        """``(consumer, event type, pointer of that entry in reads)`` for every registration."""
        return [
            (consumer, event_type, f"{consumer.pointer}/reads/{index}")
            for consumer in self.consumers
            for index, event_type in enumerate(consumer.reads)
        ]


def load_consumers(contracts_root: Path) -> ConsumerRegistry:
    """The registry in ``contracts_root/consumers.json``; empty when there is no such file."""
    path = contracts_root / CONSUMERS_FILE
    if not path.is_file():
        return ConsumerRegistry(None)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConsumersError(path, "", f"cannot read the consumers file: {exc}") from None
    try:
        parsed = _ConsumersFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        pointer = "".join(f"/{part}" for part in error["loc"])
        raise ConsumersError(path, pointer, f"{error['msg']} (see docs/governance.md, 'The consumers file')") from None
    consumers = tuple(
        Consumer(entry.service, entry.language, entry.reads, f"/consumers/{index}", entry.repository)
        for index, entry in enumerate(parsed.consumers)
    )
    return ConsumerRegistry(path, consumers)
