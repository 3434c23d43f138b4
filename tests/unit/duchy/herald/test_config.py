from __future__ import annotations

from pathlib import Path

import pytest

from cmms.duchy.herald.config import (
    ProtocolsSetupConfigError,
    dump_protocols_setup_config,
    load_protocols_setup_config,
    parse_protocols_setup_config,
)
from cmms.protocols.stages import RoleInComputation
from cmms.testing.herald import setup_config

YAML = """
llv2: {aggregator: aggregator}
hmss:
  first_non_aggregator: worker1
  second_non_aggregator: worker2
  aggregator: aggregator
trustee: {duchy: aggregator}
"""


def test_yaml_names_duchies_and_roles_follow_from_the_duchy_name() -> None:
    config = parse_protocols_setup_config(YAML)
    assert config.llv2 is not None and config.hmss is not None
    assert config.llv2.role_of("aggregator") is RoleInComputation.AGGREGATOR
    assert config.llv2.role_of("worker2") is RoleInComputation.NON_AGGREGATOR
    assert config.hmss.role_of("worker1") is RoleInComputation.FIRST_NON_AGGREGATOR
    assert config.hmss.role_of("worker2") is RoleInComputation.SECOND_NON_AGGREGATOR
    assert config.hmss.role_of("aggregator") is RoleInComputation.AGGREGATOR
    assert config.hmss.role_of("elsewhere") is None
    assert config.reach_only_llv2 is None


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "setup.json"
    path.write_text(dump_protocols_setup_config(setup_config()))
    assert load_protocols_setup_config(path) == setup_config()


@pytest.mark.parametrize(
    "text",
    [
        "llv2: {aggregator: a, role: AGGREGATOR}",  # unknown key
        "hmss: {first_non_aggregator: a, second_non_aggregator: a, aggregator: b}",
        "llv2: [",
        "- just a list",
    ],
)
def test_bad_configs_are_user_errors(text: str) -> None:
    with pytest.raises(ProtocolsSetupConfigError):
        parse_protocols_setup_config(text)


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolsSetupConfigError, match="cannot read"):
        load_protocols_setup_config(tmp_path / "absent.yaml")
