"""SQL plumbing shared by the inbox, the outbox and services: engines, UTC times, retries.

SQLAlchemy is an optional dependency (``pip install 'eventbus[sql]'``): importing the SDK never
needs it, and the first SQL object a program builds says which extra is missing.

SQLite and PostgreSQL are the two supported databases. SQLite gets WAL, ``BEGIN IMMEDIATE``
transactions (a writer takes the write lock up front, so two writers wait for each other instead
of failing half-way with "database is locked") and a busy timeout; PostgreSQL URLs without a
driver get psycopg 3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError

try:
    import sqlalchemy as sa
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Connection, Engine, make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError
except ImportError:  # pragma: no cover - exercised only without the extra
    sa = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "SUPPORTED_DIALECTS",
    "UtcDateTime",
    "create_sql_engine",
    "define_table",
    "dialect_insert",
    "insert_ignoring_conflicts",
    "require_sqlalchemy",
    "run_transaction",
]

log = logging.getLogger("eventbus.sql")

SUPPORTED_DIALECTS = ("postgresql", "sqlite")
T = TypeVar("T")

# SQLSTATEs worth retrying the whole transaction for: serialization failure, deadlock.
_RETRY_SQLSTATES = {"40001", "40P01"}


def require_sqlalchemy() -> None:
    """Raise an ImportError that names the extra to install when SQLAlchemy is missing."""
    if sa is None:
        raise ImportError("the SQL inbox/outbox needs SQLAlchemy 2: pip install 'eventbus[sql]'")


def _utc_datetime_type() -> type:
    if sa is None:  # pragma: no cover
        return object

    class _UtcDateTime(sa.types.TypeDecorator[datetime]):
        """A timezone-aware UTC datetime on every database (SQLite stores naive text otherwise)."""

        impl = sa.DateTime(timezone=True)
        cache_ok = True

        def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
            value = value.astimezone(UTC)
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

        def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
            if value is None:
                return None
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    _UtcDateTime.__name__ = "UtcDateTime"
    _UtcDateTime.__qualname__ = "UtcDateTime"
    return _UtcDateTime


UtcDateTime: Any = _utc_datetime_type()


def define_table(metadata: Any, name: str, *elements: Any) -> Any:
    """Table ``name`` of ``metadata`` (a fresh MetaData when None), defined on first use.

    The SDK's tables join the service's own ``MetaData`` so that one ``create_all`` (or one
    migration) makes them all; two ``Inbox`` objects on one metadata share one table.
    """
    require_sqlalchemy()
    target = metadata if metadata is not None else sa.MetaData()
    existing = target.tables.get(name)
    return existing if existing is not None else sa.Table(name, target, *elements)


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @sa_event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sql_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, tuned for short write transactions.

    ``sqlite:///path.db`` is a file next to the process (created on first use);
    ``postgresql://user@host/db`` uses psycopg 3 unless the URL names another driver.
    Other databases raise ``ConfigurationError``.
    """
    require_sqlalchemy()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"not a database URL: {url!r} (e.g. sqlite:///context.db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:
        raise ConfigurationError(f"database {backend!r} is not supported (use sqlite or postgresql)")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError("an in-memory SQLite database cannot be shared: give a file path")
        engine = sa.create_engine(
            parsed, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
        )
        _sqlite_pragmas(engine, busy_timeout_ms=30_000)
        return engine
    engine = sa.create_engine(parsed, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    if parsed.get_driver_name() == "psycopg":
        _binary_arrays(engine)
    return engine


def _binary_arrays(engine: Engine) -> None:
    """Send Python lists (the arrays of ``bulk_insert`` and friends) in PostgreSQL's binary format.

    The text format quotes and escapes every element with regular expressions, which cost more
    than the rest of a batch's client work; the binary format copies the bytes.
    """
    from psycopg.types.array import ListBinaryDumper

    @sa_event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def dialect_insert(table: Any, dialect_name: str) -> Any:
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ConfigurationError(f"database {dialect_name!r} is not supported (use sqlite or postgresql)")


def insert_ignoring_conflicts(table: Any, dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the table, in the engine's dialect (see also ``bulk_insert``)."""
    return dialect_insert(table, dialect_name).on_conflict_do_nothing()


def _retryable(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    return state in _RETRY_SQLSTATES or "database is locked" in str(exc.orig)


def run_transaction(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
    """Run ``work(connection)`` in one transaction; commit, or roll back and raise.

    Serialization failures and deadlocks (which PostgreSQL resolves by aborting one of the
    transactions) are retried from the start, up to ``attempts`` times, so ``work`` must not
    have side effects outside the database.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as connection:
                return work(connection)
        except DBAPIError as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.info("transaction conflict (%s); retrying, attempt %d", getattr(exc.orig, "sqlstate", exc), attempt)
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
