"""A local system started in the test's own process, so that a scenario can take its processes
down and bring them back (`Supervisor.stop_child` / `start_child`) and watch its mill jobs.

Every process is stopped when the test ends, failed or not, and none may outlive it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.system import LocalSystem
from cmms.testing.processes import processes_mentioning

# Small: Liquid Legions' time grows with the reach, and the machine has two cores.
POPULATION = 1_000

StartSystem = Callable[..., Awaitable[LocalSystem]]


@pytest.fixture
async def start_system(tmp_path: Path) -> AsyncIterator[StartSystem]:
    """`await start_system(**options)`: a started system (noise off, small population)."""
    systems: list[LocalSystem] = []

    async def start(**overrides: Any) -> LocalSystem:
        settings: dict[str, Any] = {
            "workdir": tmp_path / "local",
            "population_size": POPULATION,
            "noise": False,
            "stop_grace_seconds": 10.0,
            **overrides,
        }
        system = LocalSystem(LocalOptions(**settings))
        systems.append(system)
        await system.start()
        return system

    try:
        yield start
    finally:
        for system in systems:
            await system.stop()
        leftovers = processes_mentioning(str(tmp_path / "local"))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert leftovers == [], "processes outlived the local system"
