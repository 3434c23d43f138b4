"""Query parameters with their Spanner types, inferred from the Python values (imports the SDK)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.cloud.spanner_v1 import param_types

from cmms.common.spanner.values import bytes_in

# The SDK is untyped; one Any-typed alias keeps strict mypy quiet at the call sites.
_array_of: Any = param_types.Array


def query_params(**values: Any) -> dict[str, Any]:
    """`params` and `param_types` keyword arguments for `execute_sql`.

    Supports bool, int, str, bytes, aware datetimes and lists of int or str; None needs a type and
    is refused (write `IS NULL` in the SQL instead).
    """
    params: dict[str, Any] = {}
    types: dict[str, Any] = {}
    for name, value in values.items():
        params[name], types[name] = _typed(name, value)
    return {"params": params, "param_types": types}


def _typed(name: str, value: Any) -> tuple[Any, Any]:
    # bool first: it is an int subclass.
    if isinstance(value, bool):
        return value, param_types.BOOL
    if isinstance(value, int):
        return value, param_types.INT64
    if isinstance(value, str):
        return value, param_types.STRING
    if isinstance(value, bytes):
        return bytes_in(value), param_types.BYTES
    if isinstance(value, datetime):
        return value, param_types.TIMESTAMP
    if isinstance(value, Sequence) and all(isinstance(v, int) for v in value):
        return list(value), _array_of(param_types.INT64)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value), _array_of(param_types.STRING)
    raise TypeError(f"query parameter {name!r}: unsupported value {value!r}")
