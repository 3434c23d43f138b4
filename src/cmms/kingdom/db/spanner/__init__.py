"""The Kingdom's database on Cloud Spanner (google-cloud-spanner; the `gcp` extra).

Selected by `spanner://projects/P/instances/I/databases/D` (see `cmms.kingdom.db.repository`).
The repositories implement the Protocols of `cmms.kingdom.db.interfaces` with the semantics of
the SQLAlchemy ones; the sync SDK runs in worker threads behind their async methods.
"""
