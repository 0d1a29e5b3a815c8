"""Workflows: chain, group and chord of typed steps, moved on by a routing slip (docs/workflows.md)."""

from .._revocations import MemoryRevocations, RedisRevocations, Revocations, RevocationStoreError
from ._slip import SLIP_HEADER, STEP_HEADER, WORKFLOW_HEADER, Slip, SlipError, advance, parse_slip

__all__ = [
    "SLIP_HEADER",
    "STEP_HEADER",
    "WORKFLOW_HEADER",
    "MemoryRevocations",
    "RedisRevocations",
    "RevocationStoreError",
    "Revocations",
    "Slip",
    "SlipError",
    "advance",
    "parse_slip",
]
