"""Exceptions raised by blob stores. Callers catch these, never a cloud SDK's own exceptions."""

from __future__ import annotations


class BlobStoreError(Exception):
    """Base class for every blob storage failure."""


class BlobNotFoundError(BlobStoreError):
    """The key names no blob (reading, or asking the size of, a missing key)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob under key {key!r}")
        self.key = key


class InvalidBlobKeyError(BlobStoreError, ValueError):
    """A key or prefix that could escape the store's root or that a backend cannot represent."""


class UnsupportedBlobStoreUrlError(BlobStoreError, ValueError):
    """A store URL with an unknown scheme, a malformed location, or an unknown option."""
