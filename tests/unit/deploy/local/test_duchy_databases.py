"""`cmms local up --duchy-database DUCHY=URL`: one duchy on its own database (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmms.common.errors import UserError
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
    internal_api_spec,
)
from cmms.deploy.local.storage import (
    database_urls,
    duchy_blob_urls,
    is_postgres_url,
    parse_duchy_databases,
    with_duchy_databases,
)
from cmms.deploy.local.system import DATA_PROVIDERS

SPANNER = "spanner://projects/p/instances/local/databases/aggregator"


def test_pairs_become_a_mapping() -> None:
    assert parse_duchy_databases([f"aggregator={SPANNER}", " worker1 = sqlite:///w.db "]) == {
        "aggregator": SPANNER,
        "worker1": "sqlite:///w.db",
    }
    assert parse_duchy_databases([]) == {}


@pytest.mark.parametrize("pair", ["aggregator", "=sqlite:///x.db", "aggregator="])
def test_a_pair_needs_a_duchy_and_a_url(pair: str) -> None:
    with pytest.raises(UserError, match="DUCHY=URL"):
        parse_duchy_databases([pair])


def test_a_duchy_named_twice_is_refused() -> None:
    with pytest.raises(UserError, match="twice"):
        parse_duchy_databases(["worker1=sqlite:///a.db", "worker1=sqlite:///b.db"])


def test_only_the_named_duchy_changes(tmp_path: Path) -> None:
    base = database_urls("sqlite", tmp_path, ["kingdom", *DUCHIES])
    chosen = with_duchy_databases(base, {"aggregator": SPANNER}, DUCHIES)
    assert chosen["aggregator"] == SPANNER
    assert {k: v for k, v in chosen.items() if k != "aggregator"} == {
        k: v for k, v in base.items() if k != "aggregator"
    }
    assert with_duchy_databases(base, {}, DUCHIES) == base


def test_unknown_duchies_and_urls_are_refused(tmp_path: Path) -> None:
    base = database_urls("sqlite", tmp_path, ["kingdom", *DUCHIES])
    with pytest.raises(UserError, match="no duchy 'kingdom'"):
        with_duchy_databases(base, {"kingdom": SPANNER}, DUCHIES)
    with pytest.raises(UserError, match="want a sqlite"):
        with_duchy_databases(base, {"worker2": "mysql://db/x"}, DUCHIES)
    with pytest.raises(UserError, match="invalid Spanner URL"):
        with_duchy_databases(base, {"worker2": "spanner://projects/p/databases/d"}, DUCHIES)


def test_postgres_urls_are_recognised() -> None:
    assert is_postgres_url("postgresql://db/x")
    assert is_postgres_url("postgresql+psycopg://db/x")
    assert not is_postgres_url(SPANNER)
    assert not is_postgres_url("sqlite:///x.db")


def test_the_internal_api_of_the_duchy_opens_its_own_database(tmp_path: Path) -> None:
    pool = PortPool(KINGDOM_PORT_COUNT + DUCHY_PORT_COUNT * len(DUCHIES))
    layout = LocalLayout(tmp_path)
    options = LocalOptions(workdir=tmp_path, duchy_databases={"aggregator": SPANNER})
    world = Topology(
        layout=layout,
        options=options,
        kingdom=KingdomPorts.take(pool),
        duchies={d: DuchyPorts.take(pool) for d in DUCHIES},
        data_providers=DATA_PROVIDERS,
        database_urls=with_duchy_databases(
            database_urls("sqlite", tmp_path, ["kingdom", *DUCHIES]),
            options.duchy_databases,
            DUCHIES,
        ),
        blob_urls=duchy_blob_urls(None, layout.blobs, DUCHIES),
        duchy_certificates={d: f"duchies/{d}/certificates/c" for d in DUCHIES},
    )
    aggregator = internal_api_spec(world, "aggregator").argv
    assert f"--database-url={SPANNER}" in aggregator
    assert "--migrate" in aggregator  # creates the Spanner database when it is missing
    worker = internal_api_spec(world, "worker1").argv
    assert f"--database-url=sqlite:///{(tmp_path / 'worker1.db').resolve()}" in worker
