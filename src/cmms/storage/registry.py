"""Open a `BlobStore` from a URL; each scheme's module is imported only when first used.

Backends are registered per scheme as a `"module:function"` reference, so that, for example,
`boto3` is never imported by a duchy that keeps its blobs on local disk.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from cmms.storage.base import BlobStore
from cmms.storage.errors import UnsupportedBlobStoreUrlError
from cmms.storage.url import BlobStoreUrl, parse_blob_store_url

BackendFactory = Callable[[BlobStoreUrl], BlobStore]

_BACKENDS: dict[str, str | BackendFactory] = {
    "file": "cmms.storage.filesystem:open_file_store",
    "memory": "cmms.storage.memory:open_memory_store",
    "s3": "cmms.storage.s3:open_s3_store",
    "gs": "cmms.storage.gcs:open_gcs_store",
}


def register_backend(scheme: str, factory: str | BackendFactory) -> None:
    """Add or replace the backend for `scheme`: a factory, or a lazy `"module:function"`."""
    _BACKENDS[scheme.lower()] = factory


def supported_schemes() -> tuple[str, ...]:
    return tuple(sorted(_BACKENDS))


def open_blob_store(url: str, **options: str) -> BlobStore:
    """The store for `url`: `file:///abs/dir`, `memory://[name]`, `s3://bucket[/prefix]` or
    `gs://bucket[/prefix]`. Keyword `options` override same-named URL query parameters.
    """
    parsed = parse_blob_store_url(url, options)
    backend = _BACKENDS.get(parsed.scheme)
    if backend is None:
        raise UnsupportedBlobStoreUrlError(
            f"unsupported blob store scheme {parsed.scheme!r} in {url!r}; "
            f"expected one of {', '.join(supported_schemes())}"
        )
    if isinstance(backend, str):
        module_name, _, attribute = backend.partition(":")
        backend = getattr(importlib.import_module(module_name), attribute)
    factory: BackendFactory = backend
    return factory(parsed)
