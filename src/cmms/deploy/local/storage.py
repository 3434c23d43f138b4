"""Each party's database URL and each duchy's blob store URL, from the `local up` options."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cmms.common.errors import UserError
from cmms.common.spanner.url import SpannerUrl, is_spanner_url

SQLITE = "sqlite"
# What a single duchy's own database URL may be (`--duchy-database DUCHY=URL`).
_DUCHY_DATABASE_SCHEMES = ("sqlite", "postgresql", "spanner")
_SHAREABLE_SCHEMES = ("file", "s3", "gs")


def database_urls(database: str, directory: Path, parties: Iterable[str]) -> dict[str, str]:
    """`sqlite`: a file per party in `directory`; `postgresql://...`: a database per party.

    PostgreSQL databases are named `{base}_{party}` (`base` is the URL's database, default
    `cmms`) and must be created with `ensure_postgres_databases` before use.
    """
    parties = list(parties)
    if database == SQLITE:
        return {p: f"sqlite:///{(directory / f'{p}.db').resolve()}" for p in parties}
    split = urlsplit(database)
    if not split.scheme.startswith("postgresql"):
        raise UserError(f"--database must be sqlite or a postgresql:// URL, got {database!r}")
    base = split.path.strip("/") or "cmms"
    urls = {}
    for party in parties:
        name = re.sub(r"[^a-z0-9_]", "_", f"{base}_{party}".lower())
        urls[party] = urlunsplit(split._replace(path=f"/{name}"))
    return urls


def parse_duchy_databases(pairs: Sequence[str]) -> dict[str, str]:
    """`DUCHY=URL` pairs (from `--duchy-database`) as a mapping; a duchy named twice is an error."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        duchy, sep, url = pair.partition("=")
        duchy, url = duchy.strip(), url.strip()
        if not sep or not duchy or not url:
            raise UserError(f"--duchy-database takes DUCHY=URL, got {pair!r}")
        if duchy in overrides:
            raise UserError(f"--duchy-database names duchy {duchy!r} twice")
        overrides[duchy] = url
    return overrides


def with_duchy_databases(
    urls: Mapping[str, str], overrides: Mapping[str, str], duchies: Iterable[str]
) -> dict[str, str]:
    """`urls` with each overridden duchy's database replaced by its own URL."""
    known = list(duchies)
    chosen = dict(urls)
    for duchy, url in overrides.items():
        if duchy not in known:
            raise UserError(
                f"--duchy-database: no duchy {duchy!r} (the duchies are {', '.join(known)})"
            )
        scheme = urlsplit(url).scheme.split("+", 1)[0]
        if scheme not in _DUCHY_DATABASE_SCHEMES:
            raise UserError(
                f"--duchy-database {duchy}: want a sqlite:///, postgresql:// or "
                f"spanner://projects/P/instances/I/databases/D URL, got {url!r}"
            )
        if is_spanner_url(url):
            SpannerUrl.parse(url)  # a malformed one fails now, not in the duchy's first call
        chosen[duchy] = url
    return chosen


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme.startswith("postgresql")


def ensure_postgres_databases(urls: Iterable[str]) -> None:
    """Create every database that does not exist yet (on the server each URL names)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    for url in urls:
        target = make_url(url).set(drivername="postgresql+psycopg")
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": target.database},
                ).first()
                if exists is None:
                    connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        except SQLAlchemyError as error:
            raise UserError(
                f"cannot prepare PostgreSQL database {target.database}: {error}"
            ) from error
        finally:
            admin.dispose()


def duchy_blob_urls(
    base: str | None, default_directory: Path, duchies: Iterable[str]
) -> dict[str, str]:
    """Each duchy's store: its own folder under `base` (default `file://{default_directory}`)."""
    if base is None:
        default_directory.mkdir(parents=True, exist_ok=True)
        base = default_directory.resolve().as_uri()
    split = urlsplit(base)
    if split.scheme not in _SHAREABLE_SCHEMES:
        # Each duchy is several processes: a store must be visible to all of them.
        raise UserError(f"--blob-storage must be a file://, s3:// or gs:// URL, got {base!r}")
    path = split.path.rstrip("/")
    return {d: urlunsplit(split._replace(path=f"{path}/{d}")) for d in duchies}
