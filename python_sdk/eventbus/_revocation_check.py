"""The check a consumer makes before it runs a workflow step or a delayed message: was it revoked?

Only deliveries that carry ``eventbus-workflow-id`` or ``eventbus-deliver-at`` are looked up, and
each costs one ``EXISTS`` with both its workflow id and its CloudEvents id; every other delivery
costs nothing. The verdict decides the settlement: ``RUN`` the handler, ``DROP`` (ack, nothing runs
and nothing is forwarded), or ``UNKNOWN`` when the store did not answer: the consumer then hands the
delivery back after a pause, as it does when a retry copy cannot be published: a store outage never
drops a message, and never runs one that may have been revoked.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

from ._envelope import binary_attribute
from ._parking import DELIVER_AT_HEADER
from ._revocations import Revocations

__all__ = ["WORKFLOW_ID_HEADER", "RevocationCheck", "Verdict", "event_type_of", "revocation_ids"]

log = logging.getLogger("eventbus")

WORKFLOW_ID_HEADER = "eventbus-workflow-id"  # workflows._slip.WORKFLOW_HEADER (the core imports no room)


class Verdict(enum.Enum):
    RUN = "run"
    DROP = "drop"
    UNKNOWN = "unknown"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def revocation_ids(headers: Mapping[str, Any] | None, message_id: str | None) -> tuple[str, ...]:
    """The ids to look up for a delivery, read from its headers before anything is parsed: none for
    a plain event; else its workflow id (if any) and its CloudEvents id (binary mode, whichever
    prefix; else the AMQP ``message_id``, which the SDK and the runtimes set to the same id)."""
    if not headers:
        return ()
    workflow = headers.get(WORKFLOW_ID_HEADER)
    if workflow is None and DELIVER_AT_HEADER not in headers:
        return ()
    event_id = binary_attribute(headers, "id") or message_id or ""
    ids = (event_id,) if workflow is None else (_text(workflow), event_id)
    return tuple(i for i in ids if i)


def event_type_of(headers: Mapping[str, Any], message_type: str | None) -> str:
    """The CloudEvents type of a delivery, for the log line (the ``type`` attribute, else the AMQP type)."""
    return binary_attribute(headers, "type") or message_type or "event"


class RevocationCheck:
    """One bus's check at dispatch, with the count of deliveries it dropped (for tests and health)."""

    def __init__(self, store: Revocations) -> None:
        self.store = store
        self.dropped = 0
        self.unknown = 0

    async def verdict(self, ids: tuple[str, ...], *, event_type: str, queue: str) -> Verdict:
        """``DROP`` when any of ``ids`` is revoked; ``UNKNOWN`` (logged) when the store did not answer."""
        try:
            revoked = await self.store.revoked(*ids)
        except Exception as exc:  # RevocationStoreError, or whatever a store of the user's own raised
            self.unknown += 1
            log.error("cannot tell whether %s %s on %s was revoked (%s); handing it back to the queue",
                      event_type, ids[-1], queue, exc)
            return Verdict.UNKNOWN
        if not revoked:
            return Verdict.RUN
        self.dropped += 1
        workflow = f" of workflow {ids[0]}" if len(ids) > 1 else ""
        log.info("dropping revoked %s %s%s on %s", event_type, ids[-1], workflow, queue)
        return Verdict.DROP
