"""Store URLs split into what backends need: `scheme://location/path?option=value`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from cmms.storage.errors import UnsupportedBlobStoreUrlError


@dataclass(frozen=True)
class BlobStoreUrl:
    url: str
    scheme: str
    location: str
    path: str
    options: Mapping[str, str] = field(default_factory=dict)

    def reject_unknown_options(self, known: set[str]) -> None:
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise UnsupportedBlobStoreUrlError(
                f"unknown option(s) {', '.join(unknown)} for a {self.scheme}:// store "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )

    def flag(self, name: str) -> bool:
        """A boolean option; a bare `?name` counts as true, an absent one as false."""
        value = self.options.get(name)
        if value is None:
            return False
        normalised = value.strip().lower()
        if normalised in {"", "1", "true", "yes", "on"}:
            return True
        if normalised in {"0", "false", "no", "off"}:
            return False
        raise UnsupportedBlobStoreUrlError(f"option {name}={value!r} is not a boolean")

    def bucket_and_prefix(self) -> tuple[str, str]:
        """For object stores: the bucket, and a key prefix that is empty or ends with '/'."""
        if not self.location:
            raise UnsupportedBlobStoreUrlError(
                f"{self.url!r} names no bucket; expected {self.scheme}://bucket[/prefix]"
            )
        prefix = self.path.strip("/")
        return self.location, f"{prefix}/" if prefix else ""


def parse_blob_store_url(url: str, options: Mapping[str, str] | None = None) -> BlobStoreUrl:
    """Parse `url`; entries of `options` override same-named query parameters."""
    split = urlsplit(url)
    scheme = split.scheme.lower()
    if not scheme:
        raise UnsupportedBlobStoreUrlError(f"blob store URL {url!r} has no scheme")
    if split.fragment:
        raise UnsupportedBlobStoreUrlError(f"blob store URL {url!r} must not have a #fragment")
    merged = dict(parse_qsl(split.query, keep_blank_values=True))
    merged.update(options or {})
    return BlobStoreUrl(
        url=url,
        scheme=scheme,
        location=unquote(split.netloc),
        path=unquote(split.path),
        options=merged,
    )
