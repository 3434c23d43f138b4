"""Principals, the trust config and the current-caller context."""

from __future__ import annotations

import asyncio

import pytest

from cmms.common.identity import (
    NoPrincipalError,
    Principal,
    PrincipalKind,
    TrustConfig,
    TrustConfigError,
    acting_as,
    current_principal,
)


@pytest.mark.parametrize(
    ("principal", "name"),
    [
        (Principal.duchy("worker1"), "duchies/worker1"),
        (Principal.data_provider("edp1"), "dataProviders/edp1"),
        (Principal.measurement_consumer("mc1"), "measurementConsumers/mc1"),
        (Principal.kingdom(), "kingdom"),
    ],
)
def test_resource_names_round_trip(principal: Principal, name: str) -> None:
    assert principal.resource_name == name
    assert Principal.from_resource_name(name) == principal


@pytest.mark.parametrize("bad", ["Worker1", "", "1abc", "a/b", "a_b"])
def test_bad_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        Principal.duchy(bad)


def test_unknown_resource_name_is_rejected() -> None:
    with pytest.raises(ValueError):
        Principal.from_resource_name("widgets/w1")


def test_trust_config_json_round_trip() -> None:
    config = TrustConfig({b"\x01\x02": Principal.duchy("a"), b"\xff": Principal.kingdom()})
    loaded = TrustConfig.from_json(config.to_json())
    assert loaded.principal_for_akid(b"\x01\x02") == Principal.duchy("a")
    assert loaded.principal_for_akid(b"\xff") == Principal.kingdom()
    assert loaded.principal_for_akid(b"\x00") is None
    assert loaded.root_skid_of(Principal.duchy("a")) == b"\x01\x02"
    assert loaded.without(Principal.kingdom()).principals == {Principal.duchy("a")}


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"root_skid_to_principal": {"zz": {"kind": "duchy", "id": "a"}}}',
        '{"root_skid_to_principal": {"01": {"kind": "wizard", "id": "a"}}}',
        '{"root_skid_to_principal": {"01": {"kind": "duchy", "id": "a", "name": "duchies/b"}}}',
        "not json",
    ],
)
def test_malformed_trust_config_is_rejected(text: str) -> None:
    with pytest.raises(TrustConfigError):
        TrustConfig.from_json(text)


def test_current_principal_is_scoped() -> None:
    with pytest.raises(NoPrincipalError):
        current_principal()
    with acting_as(Principal.data_provider("edp1")):
        assert current_principal() == Principal.data_provider("edp1")
    with pytest.raises(NoPrincipalError):
        current_principal()


async def test_current_principal_does_not_leak_between_tasks() -> None:
    seen: dict[str, Principal] = {}
    both_set = asyncio.Barrier(2)

    async def call(principal: Principal) -> None:
        with acting_as(principal):
            await both_set.wait()
            seen[principal.id] = current_principal()

    await asyncio.gather(call(Principal.duchy("a")), call(Principal.duchy("b")))
    assert seen == {"a": Principal.duchy("a"), "b": Principal.duchy("b")}
    assert {p.kind for p in seen.values()} == {PrincipalKind.DUCHY}
