"""Bulk writes on SQLite and PostgreSQL (unnest of arrays there): same results on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from eventbus import UtcDateTime, bulk_insert, bulk_update, column_in, create_sql_engine, keys_in

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def table(database_url: str) -> Iterator[tuple[sa.Engine, sa.Table]]:
    engine = create_sql_engine(database_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "things",
        metadata,
        sa.Column("a", sa.String(20), primary_key=True),
        sa.Column("b", sa.String(20), primary_key=True),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("at", UtcDateTime),
        sa.Column("blob", sa.LargeBinary),
    )
    metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def rows(table: sa.Table, engine: sa.Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(table).order_by(table.c.a, table.c.b))]


def test_insert_skips_conflicts_and_returns_what_it_inserted(table: tuple[sa.Engine, sa.Table]) -> None:
    engine, things = table
    first = [
        {"a": "x", "b": "1", "score": 1.5, "at": T0, "blob": b"\x00\xff"},
        {"a": "y", "b": "1", "score": 2.0, "at": None, "blob": None},
    ]
    with engine.begin() as connection:
        assert sorted(bulk_insert(connection, things, first, returning="a")) == ["x", "y"]
    again = [
        {"a": "x", "b": "1", "score": 9.0, "at": T0, "blob": None},
        {"a": "z", "b": "'\"{},", "score": 3.0, "at": T0, "blob": b""},
    ]
    with engine.begin() as connection:
        assert bulk_insert(connection, things, again, returning="a") == ["z"]
    assert rows(things, engine) == [
        ("x", "1", 1.5, T0, b"\x00\xff"),
        ("y", "1", 2.0, None, None),
        ("z", "'\"{},", 3.0, T0, b""),
    ]


def test_update_by_keys_and_the_where_clauses(table: tuple[sa.Engine, sa.Table]) -> None:
    engine, things = table
    with engine.begin() as connection:
        bulk_insert(connection, things, [{"a": n, "b": "k", "score": 0.0} for n in "pqrs"], returning="a")
        bulk_update(
            connection, things, ["a", "b"], [{"a": "q", "b": "k", "score": 7.0}, {"a": "s", "b": "k", "score": 8.5}]
        )
        picked = connection.execute(
            sa.select(things.c.a).where(keys_in(connection, things, ["a", "b"], [("q", "k"), ("r", "k"), ("r", "no")]))
        ).scalars()
        assert sorted(picked) == ["q", "r"]
        listed = connection.execute(sa.select(things.c.a).where(column_in(connection, things.c.a, ["p", "s", "t"])))
        assert sorted(listed.scalars()) == ["p", "s"]
    assert [(r[0], r[2]) for r in rows(things, engine)] == [("p", 0.0), ("q", 7.0), ("r", 0.0), ("s", 8.5)]


def test_rows_must_share_their_columns(table: tuple[sa.Engine, sa.Table]) -> None:
    engine, things = table
    with engine.begin() as connection, pytest.raises(ValueError, match="same columns"):
        bulk_insert(connection, things, [{"a": "x", "b": "1", "score": 1.0}, {"a": "y", "b": "1"}], returning="a")


def test_columns_with_the_same_value_for_every_row(table: tuple[sa.Engine, sa.Table]) -> None:
    engine, things = table
    with engine.begin() as connection:
        inserted = bulk_insert(
            connection,
            things,
            [{"a": "x", "b": "1"}, {"a": "y", "b": "2"}],
            returning="a",
            same={"score": 0.5, "at": None, "blob": b"\x01"},
        )
        assert sorted(inserted) == ["x", "y"]
    with engine.begin() as connection:
        bulk_update(connection, things, ["a", "b"], [{"a": "x", "b": "1", "score": 7.0}], same={"at": T0})
    assert rows(things, engine) == [("x", "1", 7.0, T0, b"\x01"), ("y", "2", 0.5, None, b"\x01")]
