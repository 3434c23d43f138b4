"""`spanner://projects/P/instances/I/databases/D`: the one URL form naming a Spanner database."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmms.common.errors import UserError

SPANNER_URL_SCHEME = "spanner"

# Instance and database ids follow Spanner's rules (lowercase, 2-64 and 2-30 characters), so a typo
# fails here rather than deep inside a gRPC call; project ids are only checked loosely, as
# domain-scoped ids ("example.com:name") exist.
_URL = re.compile(
    r"spanner://projects/(?P<project>[A-Za-z0-9][A-Za-z0-9.:_-]*)"
    r"/instances/(?P<instance>[a-z][a-z0-9-]{0,62}[a-z0-9])"
    r"/databases/(?P<database>[a-z][a-z0-9_-]{0,28}[a-z0-9])"
)


class InvalidSpannerUrlError(UserError):
    """The URL starts with spanner:// but does not name a database."""


def is_spanner_url(url: object) -> bool:
    return isinstance(url, str) and url.startswith(f"{SPANNER_URL_SCHEME}://")


@dataclass(frozen=True)
class SpannerUrl:
    project: str
    instance: str
    database: str

    @classmethod
    def parse(cls, url: str) -> SpannerUrl:
        match = _URL.fullmatch(url)
        if match is None:
            raise InvalidSpannerUrlError(
                f"invalid Spanner URL {url!r}: expected "
                "spanner://projects/PROJECT/instances/INSTANCE/databases/DATABASE"
            )
        return cls(match["project"], match["instance"], match["database"])

    def __str__(self) -> str:
        return (
            f"{SPANNER_URL_SCHEME}://projects/{self.project}/instances/{self.instance}"
            f"/databases/{self.database}"
        )
