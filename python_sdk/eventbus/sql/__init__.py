"""Exactly-once effects on a SQL database (extra ``sql``): the inbox, the transactional outbox and
its relay, and the SQLAlchemy plumbing they share.

A room of its own because it is optional: SQLAlchemy costs a service about 28 MB, so the bus core
never imports this package (``tests/test_architecture.py``); ``eventbus.Inbox`` and the other
top-level names load it on first use. Importing it needs no SQLAlchemy until a table is used.
"""

from ._bulk import bulk_insert, bulk_update, column_in, keys_in
from ._inbox import Inbox
from ._outbox import Outbox, OutboxEntry, OutboxMessage
from ._relay import OutboxRelay, RelayStats
from ._sql import UtcDateTime, create_sql_engine, insert_ignoring_conflicts, run_transaction

__all__ = [
    "Inbox",
    "Outbox",
    "OutboxEntry",
    "OutboxMessage",
    "OutboxRelay",
    "RelayStats",
    "UtcDateTime",
    "bulk_insert",
    "bulk_update",
    "column_in",
    "create_sql_engine",
    "insert_ignoring_conflicts",
    "keys_in",
    "run_transaction",
]
