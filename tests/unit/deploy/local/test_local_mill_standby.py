"""`cmms local up`: each mill scheduler keeps a warm standby mill (no processes started)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.layout import LocalLayout
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.ports import PortPool
from cmms.deploy.local.processes import (
    DUCHY_PORT_COUNT,
    KINGDOM_PORT_COUNT,
    DuchyPorts,
    KingdomPorts,
    Topology,
    mill_scheduler_spec,
)
from cmms.deploy.local.storage import database_urls, duchy_blob_urls
from cmms.deploy.local.system import DATA_PROVIDERS


def test_mill_schedulers_keep_a_warm_standby_unless_told_not_to(tmp_path: Path) -> None:
    pool = PortPool(KINGDOM_PORT_COUNT + DUCHY_PORT_COUNT * len(DUCHIES))
    layout = LocalLayout(tmp_path)
    world = Topology(
        layout=layout,
        options=LocalOptions(workdir=tmp_path),
        kingdom=KingdomPorts.take(pool),
        duchies={d: DuchyPorts.take(pool) for d in DUCHIES},
        data_providers=DATA_PROVIDERS,
        database_urls=database_urls("sqlite", tmp_path, ["kingdom", *DUCHIES]),
        blob_urls=duchy_blob_urls(None, layout.blobs, DUCHIES),
        duchy_certificates={d: f"duchies/{d}/certificates/c" for d in DUCHIES},
    )
    assert "--warm-standby" in mill_scheduler_spec(world, "worker1").argv
    cold = replace(world, options=LocalOptions(workdir=tmp_path, mill_warm_standby=False))
    assert "--warm-standby" not in mill_scheduler_spec(cold, "worker1").argv
