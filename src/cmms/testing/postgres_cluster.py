"""A throwaway PostgreSQL cluster of the test's own, which the test may stop and start again.

Tests that restart the database under a running system cannot share the CI's server, so they
make their own: `initdb` into a temporary directory, a server on a free loopback port with its
socket in that directory, `fsync` off. Run as root, the server runs as the `postgres` user (it
refuses root). `PostgresCluster.find()` returns None, with the reason, when the binaries or that
user are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

StopMode = Literal["smart", "fast", "immediate"]


def _pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, str(Path(found).resolve().parent))
    for directory in candidates:
        if all(os.access(Path(directory) / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why no cluster can be made here, or None if one can."""
        if _pg_bin() is None:
            return "PostgreSQL binaries (initdb, pg_ctl) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root without a postgres user to run the server as"
        return None

    @classmethod
    def create(cls, parent: Path | None = None) -> PostgresCluster:
        """initdb a new cluster (not started yet)."""
        reason = cls.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        bin_dir = _pg_bin()
        assert bin_dir is not None
        root = Path(tempfile.mkdtemp(prefix="cmms-pg-", dir=parent))
        run_as = "postgres" if os.geteuid() == 0 else None
        if run_as is not None:
            shutil.chown(root, user=run_as)
        cluster = cls(bin_dir, root, _free_port(), run_as)
        cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres")
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """The server URL (database `postgres`), as the local system takes it."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server; `immediate` is a crash (no checkpoint, clients cut off)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        status = self._command("pg_ctl", "-D", str(self.data), "status")
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs, and remove every file."""
        if self.data.exists() and self.running:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            self._command(tool, *args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
