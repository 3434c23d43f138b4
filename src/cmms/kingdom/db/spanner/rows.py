"""Rows in and out of Spanner: SELECTs of whole rows as mappings, and buffered mutations.

Column names and types come from the SQL schema (`cmms.kingdom.db.schema`), which the Spanner
schema mirrors, so a mapping read here builds the same record class as a SQLAlchemy row. BYTES
travel base64-encoded through the SDK (see `cmms.common.spanner.values`): encoded in every
mutation, decoded in every row read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import LargeBinary

from cmms.common.spanner.params import query_params
from cmms.common.spanner.values import bytes_in, bytes_out
from cmms.kingdom.db.schema import metadata
from cmms.kingdom.db.spanner.store import SpannerWriteTx

Row = dict[str, Any]


@functools.cache
def columns(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in metadata.tables[table].columns)


@functools.cache
def _bytes_columns(table: str) -> frozenset[str]:
    return frozenset(
        c.name for c in metadata.tables[table].columns if isinstance(c.type, LargeBinary)
    )


def column_list(table: str, alias: str | None = None) -> str:
    prefix = "" if alias is None else f"{alias}."
    return ", ".join(prefix + c for c in columns(table))


def select_rows(
    reader: Any,
    table: str,
    where: str = "TRUE",
    *,
    source: str | None = None,
    alias: str | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    **params: Any,
) -> list[Row]:
    """Whole rows of `table` matching `where` (GoogleSQL with @params), as column mappings.

    `source` replaces the FROM clause (joins, index hints); `alias` then names `table` in it.
    """
    sql = f"SELECT {column_list(table, alias)} FROM {source or table} WHERE {where}"
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    result = reader.execute_sql(sql, **query_params(**params))
    return [row_of(table, values) for values in result]


def select_one(reader: Any, table: str, where: str, **params: Any) -> Row | None:
    found = select_rows(reader, table, where, limit=1, **params)
    return found[0] if found else None


def row_of(table: str, values: Iterable[Any]) -> Row:
    binary = _bytes_columns(table)
    return {
        name: bytes_out(value) if name in binary and value is not None else value
        for name, value in zip(columns(table), values, strict=True)
    }


def scalars(reader: Any, sql: str, **params: Any) -> list[Any]:
    """The first column of every row of `sql`."""
    return [values[0] for values in reader.execute_sql(sql, **query_params(**params))]


def insert(tx: SpannerWriteTx, table: str, **values: Any) -> None:
    tx.transaction.insert(table, columns=tuple(values), values=[_encoded(values)])


def update(tx: SpannerWriteTx, table: str, **values: Any) -> None:
    """Set the given columns of the row whose key columns are among `values`."""
    tx.transaction.update(table, columns=tuple(values), values=[_encoded(values)])


def insert_or_update(tx: SpannerWriteTx, table: str, **values: Any) -> None:
    tx.transaction.insert_or_update(table, columns=tuple(values), values=[_encoded(values)])


def _encoded(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(bytes_in(v) if isinstance(v, bytes) else v for v in values.values())
