"""The duchy's computations database: schema, migrations and repositories (SQLAlchemy Core).

Backends are chosen by URL: `sqlite+aiosqlite:///path` (default, embedded) or
`postgresql+psycopg://...`. Protocol messages are stored as opaque bytes, so nothing here depends
on generated protobuf code; stages are `(protocol, stage)` numbers checked against
`cmms.protocols.stages`.
"""

from __future__ import annotations
