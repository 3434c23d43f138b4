"""The Cloud Spanner emulator for tests: one process per session, one fresh database per test.

The emulator ships with the Google Cloud SDK (`cloud_spanner_emulator/emulator_main`); tests that
need it skip, naming the missing binary, where it is absent. The session fixture starts it on a
free loopback port, waits until it answers admin calls, points `SPANNER_EMULATOR_HOST` at it
(the SDK then uses anonymous credentials) and creates one instance. Every database URL it hands
out names a database that does not exist yet; migrations create it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cmms.common.spanner.connection import EMULATOR_HOST_ENV, EMULATOR_INSTANCE_CONFIG
from cmms.testing.servers import LOOPBACK, ServerStartError, free_ports

EMULATOR_BINARY_ENV = "CMMS_SPANNER_EMULATOR"
_DEFAULT_BINARY = Path("/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/emulator_main")
EMULATOR_SKIP_REASON = (
    f"the Cloud Spanner emulator is not installed (looked for {_DEFAULT_BINARY}, "
    f"or set {EMULATOR_BINARY_ENV}; package google-cloud-cli-spanner-emulator)"
)
PROJECT = "cmms-test"
INSTANCE = "cmms-test"
_START_TIMEOUT_SECONDS = 60.0
_POLL_INTERVAL_SECONDS = 0.1
_STOP_GRACE_SECONDS = 5.0
# The emulator refuses a 101st database in one instance, and a full suite makes several hundred:
# hand out databases from a fresh instance before the current one fills up.
_DATABASES_PER_INSTANCE = 90


def spanner_emulator_binary() -> Path | None:
    configured = os.environ.get(EMULATOR_BINARY_ENV)
    candidates = [Path(configured)] if configured else []
    on_path = shutil.which("emulator_main")
    candidates += [_DEFAULT_BINARY] + ([Path(on_path)] if on_path else [])
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


@dataclass
class SpannerEmulator:
    host: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)
    _instance_number: int = field(default=0, repr=False)
    _databases_in_instance: int = field(default=0, repr=False)

    @property
    def instance(self) -> str:
        """The instance new databases are created in."""
        return INSTANCE if self._instance_number == 0 else f"{INSTANCE}-{self._instance_number}"

    def new_database_url(self, prefix: str = "cmms") -> str:
        """The URL of a database nobody has used (Spanner database ids: at most 30 characters)."""
        if self._databases_in_instance >= _DATABASES_PER_INSTANCE:
            self._instance_number += 1
            self._databases_in_instance = 0
            _create_instance_when_ready(self, self.instance)
        self._databases_in_instance += 1
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"[:30]
        return f"spanner://projects/{PROJECT}/instances/{self.instance}/databases/{name}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                # Its data lives in memory only: a hard stop loses nothing.
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.log_path.parent, ignore_errors=True)


def start_spanner_emulator(binary: Path) -> SpannerEmulator:
    """Start the emulator, point `SPANNER_EMULATOR_HOST` at it and create the test instance.

    The SDK reads that variable when a client is made (and then talks plain-text gRPC, without
    credentials), so it is set before the first client; callers restore it afterwards.
    """
    (port,) = free_ports(1)
    host = f"{LOOPBACK}:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="cmms-spanner-emulator-"))
    log_path = workdir / "emulator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "--host_port", host],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    emulator = SpannerEmulator(host, process, log_path)
    os.environ[EMULATOR_HOST_ENV] = host
    # Tests that die before their fixture teardown must not leave the emulator running.
    atexit.register(emulator.stop)
    try:
        _create_instance_when_ready(emulator, INSTANCE)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _create_instance_when_ready(emulator: SpannerEmulator, instance_id: str) -> None:
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import spanner

    client: Any = spanner.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )
    instance = client.instance(
        instance_id,
        configuration_name=f"projects/{PROJECT}/instanceConfigs/{EMULATOR_INSTANCE_CONFIG}",
        display_name=instance_id,
        node_count=1,
    )
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    last_error: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if emulator.process.poll() is not None:
                raise ServerStartError(
                    f"the Spanner emulator exited with code {emulator.process.returncode}:\n"
                    f"{emulator.log_tail()}"
                )
            try:
                instance.create().result(_START_TIMEOUT_SECONDS)
                return
            except GoogleAPICallError as error:
                # UNAVAILABLE until the gRPC server listens; anything else is a real failure.
                if error.grpc_status_code is None or error.grpc_status_code.name != "UNAVAILABLE":
                    raise
                last_error = error
            time.sleep(_POLL_INTERVAL_SECONDS)
    finally:
        client.close()
    raise ServerStartError(
        f"the Spanner emulator did not answer within {_START_TIMEOUT_SECONDS:.0f}s "
        f"({last_error}):\n{emulator.log_tail()}"
    )


# One emulator per test process. Conftests that import the fixture each define their own copy of
# it (pytest keys fixtures by where they are defined), and every copy must share one emulator:
# `SPANNER_EMULATOR_HOST` can only point at one.
_shared: SpannerEmulator | None = None


@pytest.fixture(scope="session")
def spanner_emulator() -> Iterator[SpannerEmulator]:
    """A running emulator with `SPANNER_EMULATOR_HOST` pointing at it, for the whole session."""
    global _shared
    if _shared is not None:
        yield _shared
        return
    binary = spanner_emulator_binary()
    if binary is None:
        pytest.skip(EMULATOR_SKIP_REASON)
    previous = os.environ.get(EMULATOR_HOST_ENV)
    try:
        _shared = start_spanner_emulator(binary)
        try:
            yield _shared
        finally:
            _shared.stop()
            _shared = None
    finally:
        if previous is None:
            os.environ.pop(EMULATOR_HOST_ENV, None)
        else:
            os.environ[EMULATOR_HOST_ENV] = previous
