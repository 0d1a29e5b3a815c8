"""Many rows in one round trip, on PostgreSQL and SQLite: the statements of a batched write path.

On PostgreSQL a batch travels as one array per column, unnested by a short statement:

    INSERT INTO t (a, b) SELECT a, b FROM unnest($1::VARCHAR[], $2::BYTEA[]) AS v(a, b)
    ON CONFLICT DO NOTHING RETURNING a

Its text does not grow with the batch, so psycopg converts it once (it caches statements under
4 kB) and the server plans a fixed shape. Multi-row ``VALUES`` (SQLAlchemy's "insertmanyvalues")
grows with the batch and was converted anew for every batch, which cost more client time than
the server spent on the rows (measured on the context-handling write path: about half). On
SQLite, a library in the same process, ``executemany`` is already cheap and is what is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._sql import dialect_insert, insert_ignoring_conflicts, require_sqlalchemy

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["bulk_increment", "bulk_insert", "bulk_update", "column_in", "keys_in"]


def _unnest(table: Any, columns: Sequence[str], values: Mapping[str, list[Any]]) -> Any:
    """``unnest(:c1::T1[], :c2::T2[], …) AS v(c1, c2, …)`` for ``table``'s columns."""
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = [sa.bindparam(f"bulk_{name}", value=values[name], type_=ARRAY(table.c[name].type)) for name in columns]
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name="v")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns = list(rows[0])
    for row in rows:
        if len(row) != len(columns) or any(name not in row for name in columns):
            raise ValueError("every row of a bulk write must have the same columns")
    return columns


def _constant(table: Any, name: str, value: Any) -> Any:
    """One value for every row, sent once as a typed scalar parameter instead of an array."""
    import sqlalchemy as sa

    column_type = table.c[name].type
    return sa.cast(sa.bindparam(f"same_{name}", value=value, type_=column_type), column_type)


def bulk_insert(
    connection: Connection,
    table: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: str,
    ignore_conflicts: bool = True,
    same: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Insert ``rows``, skipping those that conflict with a unique key; the ``returning`` column of
    each row actually inserted.

    ``same`` gives columns whose value is the same for every row (a timestamp, a status): on
    PostgreSQL each travels once, not as an array of copies to encode and decode.
    """
    require_sqlalchemy()
    import sqlalchemy as sa

    if not rows:
        return []
    columns = _columns(rows)
    fixed = dict(same or {})
    if connection.dialect.name != "postgresql":
        statement = insert_ignoring_conflicts(table, connection.dialect.name) if ignore_conflicts else table.insert()
        params = [{**row, **fixed} for row in rows] if fixed else list(rows)
        return [row[0] for row in connection.execute(statement.returning(table.c[returning]), params)]
    from sqlalchemy.dialects.postgresql import insert

    source = _unnest(table, columns, {name: [row[name] for row in rows] for name in columns})
    selected = [*(source.c[name] for name in columns), *(_constant(table, n, v) for n, v in fixed.items())]
    statement = insert(table).from_select([*columns, *fixed], sa.select(*selected))
    if ignore_conflicts:
        statement = statement.on_conflict_do_nothing()
    return [row[0] for row in connection.execute(statement.returning(table.c[returning]))]


def bulk_update(
    connection: Connection,
    table: Any,
    keys: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """Set the other columns of each row on the table row with the same ``keys`` values, and the
    columns of ``same`` to one value for all of them."""
    require_sqlalchemy()
    import sqlalchemy as sa

    if not rows:
        return
    columns = _columns(rows)
    fixed = dict(same or {})
    changed = [name for name in columns if name not in keys]
    if connection.dialect.name != "postgresql":
        statement = (
            table.update()
            .where(*(table.c[key] == sa.bindparam(f"key_{key}") for key in keys))
            .values({name: sa.bindparam(f"new_{name}") for name in [*changed, *fixed]})
        )
        params = [
            {
                **{f"key_{k}": row[k] for k in keys},
                **{f"new_{n}": row[n] for n in changed},
                **{f"new_{n}": v for n, v in fixed.items()},
            }
            for row in rows
        ]
        connection.execute(statement, params)
        return
    source = _unnest(table, columns, {name: [row[name] for row in rows] for name in columns})
    statement = (
        table.update()
        .where(*(table.c[key] == source.c[key] for key in keys))
        .values({**{name: source.c[name] for name in changed}, **{n: _constant(table, n, v) for n, v in fixed.items()}})
    )
    connection.execute(statement)


def keys_in(connection: Connection, table: Any, keys: Sequence[str], values: Iterable[Sequence[Any]]) -> Any:
    """A WHERE clause: the row's ``keys`` are one of ``values`` (tuples)."""
    require_sqlalchemy()
    import sqlalchemy as sa

    tuples = [tuple(v) for v in values]
    target = sa.tuple_(*(table.c[key] for key in keys))
    if connection.dialect.name != "postgresql":
        return target.in_(tuples)
    source = _unnest(table, keys, {key: [t[n] for t in tuples] for n, key in enumerate(keys)})
    return target.in_(sa.select(*(source.c[key] for key in keys)))


def column_in(connection: Connection, column: Any, values: Iterable[Any]) -> Any:
    """A WHERE clause: ``column`` is one of ``values`` (``= ANY(array)`` on PostgreSQL)."""
    require_sqlalchemy()
    import sqlalchemy as sa

    listed = list(values)
    if connection.dialect.name != "postgresql":
        return column.in_(listed)
    from sqlalchemy.dialects.postgresql import ARRAY

    return column == sa.any_(sa.bindparam(None, value=listed, type_=ARRAY(column.type)))


def bulk_increment(
    connection: Connection, table: Any, key: str, counter: str, increments: Mapping[str, int]
) -> dict[str, int]:
    """Add ``increments[k]`` to the ``counter`` of row ``k`` (a missing row starts at 0); the new values.

    Each row stays locked until the transaction ends, so two transactions that count the same
    key take turns, the second seeing the first's total. Keys are locked in sorted order, so two
    transactions with overlapping keys wait for each other instead of deadlocking.
    """
    require_sqlalchemy()
    import sqlalchemy as sa

    keys = sorted(increments)
    if not keys:
        return {}
    if connection.dialect.name != "postgresql":
        totals = {}
        for name in keys:  # SQLite: one writer at a time, and each statement is a library call
            statement = dialect_insert(table, connection.dialect.name).values({key: name, counter: increments[name]})
            statement = statement.on_conflict_do_update(
                index_elements=[table.c[key]], set_={counter: table.c[counter] + statement.excluded[counter]}
            )
            totals[name] = connection.execute(statement.returning(table.c[counter])).scalar_one()
        return totals
    from sqlalchemy.dialects.postgresql import insert

    source = _unnest(table, [key, counter], {key: keys, counter: [increments[k] for k in keys]})
    statement = insert(table).from_select(
        [key, counter], sa.select(source.c[key], source.c[counter]).order_by(source.c[key])
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]], set_={counter: table.c[counter] + statement.excluded[counter]}
    )
    return {name: total for name, total in connection.execute(statement.returning(table.c[key], table.c[counter]))}
