"""Alembic migrations of the duchy database; run them through `cmms.duchy.db.migrate`."""
