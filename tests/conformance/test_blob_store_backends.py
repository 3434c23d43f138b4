"""Backend-specific guarantees of the cloud stores, checked behind the BlobStore interface."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path

import pytest
import requests

from cmms.storage import BlobStoreError, iterate, open_blob_store, split_into_chunks
from cmms.storage import gcs as gcs_module
from cmms.storage.gcs import GcsBlobStore
from cmms.storage.s3 import MIN_PART_SIZE, S3BlobStore
from cmms.testing.conformance.blob_store import ChunkSourceFailed, failing_after, generated_bytes
from cmms.testing.servers import GcsTestServer, S3TestServer


def _unique_prefix() -> str:
    return f"backends/{uuid.uuid4().hex}"


async def test_s3_interrupted_multipart_write_is_aborted(seaweedfs: S3TestServer) -> None:
    prefix = _unique_prefix()
    store = open_blob_store(
        seaweedfs.url(prefix), **seaweedfs.store_options(), part_size=str(MIN_PART_SIZE)
    )
    data = generated_bytes(3 * MIN_PART_SIZE, seed=1)
    with pytest.raises(ChunkSourceFailed):
        await store.write("k", failing_after(list(split_into_chunks(data, 1024 * 1024))))
    await store.close()
    uploads = seaweedfs.client().list_multipart_uploads(Bucket=seaweedfs.bucket, Prefix=prefix)
    assert uploads.get("Uploads", []) == []


async def test_s3_blob_below_one_part_uses_a_single_put(seaweedfs: S3TestServer) -> None:
    prefix = _unique_prefix()
    store = open_blob_store(seaweedfs.url(prefix), **seaweedfs.store_options())
    await store.write_bytes("small", b"x" * 1000)
    await store.close()
    head = seaweedfs.client().head_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/small")
    # Multipart objects carry an ETag of the form "<md5-of-md5s>-<part count>".
    assert "-" not in head["ETag"].strip('"')
    assert head["ContentLength"] == 1000


async def test_s3_settings_come_from_standard_environment_variables(
    seaweedfs: S3TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in seaweedfs.environment().items():
        monkeypatch.setenv(name, value)
    async with open_blob_store(seaweedfs.url(_unique_prefix())) as store:
        await store.write_bytes("from-env", b"configured by AWS_* variables")
        assert await store.read_bytes("from-env") == b"configured by AWS_* variables"
        await store.delete("from-env")


async def test_s3_wrong_credentials_are_a_store_error_not_a_missing_blob(
    seaweedfs: S3TestServer,
) -> None:
    options = {**seaweedfs.store_options(), "secret_access_key": "wrong"}
    async with open_blob_store(seaweedfs.url(_unique_prefix()), **options) as store:
        with pytest.raises(BlobStoreError) as raised:
            await store.write_bytes("k", b"x")
        assert type(raised.value) is BlobStoreError
        assert "SignatureDoesNotMatch" in str(raised.value)


async def test_s3_part_size_below_the_s3_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3BlobStore("bucket", part_size=MIN_PART_SIZE - 1, client=object())


async def test_gcs_honours_storage_emulator_host(
    fake_gcs: GcsTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_gcs.environment().items():
        monkeypatch.setenv(name, value)
    async with open_blob_store(fake_gcs.url(_unique_prefix())) as store:
        await store.write("from-env", iterate([b"configured by ", b"STORAGE_EMULATOR_HOST"]))
        assert await store.read_bytes("from-env") == b"configured by STORAGE_EMULATOR_HOST"
        assert [key async for key in store.list()] == ["from-env"]
        await store.delete("from-env")


async def test_gcs_failed_write_cancels_its_upload_session(
    fake_gcs: GcsTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled: list[int] = []

    def recording_cancel(http: requests.Session, session_url: str) -> None:
        # GCS answers a cancelled resumable session with 499.
        cancelled.append(http.delete(session_url, timeout=10).status_code)

    monkeypatch.setattr(gcs_module, "_cancel_session", recording_cancel)
    store = open_blob_store(
        fake_gcs.url(_unique_prefix()), **fake_gcs.store_options(), upload_chunk_size="262144"
    )
    data = generated_bytes(5 * 262144, seed=2)
    with pytest.raises(ChunkSourceFailed):
        await store.write("k", failing_after(list(split_into_chunks(data, 100_000))))
    assert cancelled == [499]
    await store.write_bytes("done", b"ok")
    assert cancelled == [499]
    await store.delete("done")
    await store.close()


def test_gcs_upload_chunk_size_must_be_a_multiple_of_256_kib() -> None:
    with pytest.raises(ValueError, match="multiple of 262144"):
        GcsBlobStore("bucket", upload_chunk_size=1000, client=_FakeGcsClient())


class _FakeGcsClient:
    def bucket(self, name: str) -> object:
        return object()


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """IPv4/IPv6 TCP sockets in LISTEN state owned by process `pid` (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    listening = set()
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                address, port = local.split(":")
                packed = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = [packed[i : i + 4][::-1] for i in range(0, width, 4)]
                family = socket.AF_INET if width == 4 else socket.AF_INET6
                listening.add((socket.inet_ntop(family, b"".join(words)), int(port, 16)))
    return listening


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_test_servers_listen_on_loopback_only(
    seaweedfs: S3TestServer, fake_gcs: GcsTestServer
) -> None:
    for server in (seaweedfs, fake_gcs):
        addresses = _listening_addresses(server.pid)
        assert addresses, "the server listens nowhere"
        assert {host for host, _ in addresses} == {"127.0.0.1"}, addresses
