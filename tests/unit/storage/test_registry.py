"""Opening stores by URL: schemes, options, errors, and lazy imports of the cloud SDKs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmms.storage import (
    BlobStore,
    UnsupportedBlobStoreUrlError,
    open_blob_store,
    register_backend,
    supported_schemes,
)
from cmms.storage.filesystem import FileBlobStore
from cmms.storage.gcs import GcsBlobStore
from cmms.storage.memory import MemoryBlobStore
from cmms.storage.s3 import S3BlobStore
from cmms.storage.url import BlobStoreUrl, parse_blob_store_url


def test_default_schemes() -> None:
    assert {"file", "memory", "s3", "gs"} <= set(supported_schemes())


def test_file_url_opens_a_directory_store(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(store, FileBlobStore)
    assert store.root == tmp_path / "blobs"
    assert (tmp_path / "blobs").is_dir()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://relative/dir", "no host"),
        ("file:relative", "absolute"),
        ("file:///tmp/x?colour=red", "unknown option"),
        ("ftp://host/dir", "unsupported blob store scheme 'ftp'"),
        ("/just/a/path", "no scheme"),
        ("s3://", "names no bucket"),
        ("gs:///prefix-without-bucket", "names no bucket"),
        ("memory://name/path", "takes a name"),
        ("s3://bucket?part_size=big", "invalid literal"),
        ("file:///tmp/x#frag", "fragment"),
    ],
)
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(UnsupportedBlobStoreUrlError, match=message):
        open_blob_store(url)


async def test_named_memory_stores_are_shared_and_unnamed_ones_private() -> None:
    first, second = open_blob_store("memory://shared-test"), open_blob_store("memory://shared-test")
    assert isinstance(first, MemoryBlobStore)
    await first.write_bytes("k", b"v")
    assert await second.read_bytes("k") == b"v"
    assert not await open_blob_store("memory://").exists("k")
    assert open_blob_store("memory://") is not open_blob_store("memory://")


def test_s3_url_gives_bucket_prefix_and_options() -> None:
    store = open_blob_store(
        "s3://my-bucket/some/prefix/?region=eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        part_size=str(6 * 1024 * 1024),
    )
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.part_size) == ("my-bucket", "some/prefix/", 6 << 20)


def test_gs_url_gives_bucket_and_prefix() -> None:
    store = open_blob_store("gs://my-bucket", endpoint="http://127.0.0.1:1", anonymous="true")
    assert isinstance(store, GcsBlobStore)
    assert (store.bucket_name, store.prefix) == ("my-bucket", "")


def test_explicit_options_override_query_parameters() -> None:
    parsed = parse_blob_store_url("s3://b/p?region=a&x=1", {"region": "b"})
    assert dict(parsed.options) == {"region": "b", "x": "1"}
    assert (parsed.location, parsed.path) == ("b", "/p")


@pytest.mark.parametrize(("value", "expected"), [("", True), ("true", True), ("0", False)])
def test_boolean_options(value: str, expected: bool) -> None:
    assert parse_blob_store_url(f"gs://b?anonymous={value}").flag("anonymous") is expected
    assert parse_blob_store_url("gs://b").flag("anonymous") is False


def test_registered_backend_is_used() -> None:
    opened: list[BlobStoreUrl] = []

    def factory(url: BlobStoreUrl) -> BlobStore:
        opened.append(url)
        return MemoryBlobStore()

    register_backend("cmms-unit-test", factory)
    assert isinstance(open_blob_store("cmms-unit-test://loc/path?a=1"), MemoryBlobStore)
    assert [(u.location, u.path, dict(u.options)) for u in opened] == [("loc", "/path", {"a": "1"})]


def test_cloud_sdks_are_imported_only_for_their_schemes(tmp_path: Path) -> None:
    program = f"""
import sys
from cmms.storage import open_blob_store
open_blob_store("file://{tmp_path}")
open_blob_store("memory://")
assert "boto3" not in sys.modules and "botocore" not in sys.modules, "boto3 imported"
assert "google.cloud.storage" not in sys.modules, "google-cloud-storage imported"
open_blob_store("s3://bucket", endpoint_url="http://127.0.0.1:1")
assert "boto3" in sys.modules
assert "google.cloud.storage" not in sys.modules, "google-cloud-storage imported"
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
